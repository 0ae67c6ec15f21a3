/* TEST-ONLY shim for Wine 8, which lacks ProcessPrng in bcryptprimitives.dll; Rust's standard
 * library imports it for its randomness (HashMap keys and the like). scripts/cross.sh builds it
 * with mingw beside the test executables at test time. Never shipped, never committed as a
 * binary: a real Windows (10 and later) has the real DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom, advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
