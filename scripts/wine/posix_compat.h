/* Test-time only: force-included (gcc -include) when scripts/cross.sh builds the C examples with
 * mingw. The examples make their default data directory with POSIX mkdtemp(), which the Windows
 * C runtime lacks; the tests always pass a directory, but the programs must link. */
#ifndef STINT_POSIX_COMPAT_H
#define STINT_POSIX_COMPAT_H
#include <direct.h>
#include <io.h>
#include <stdlib.h>

static inline char *stint_compat_mkdtemp(char *template_)
{
    if (_mktemp(template_) == NULL || _mkdir(template_) != 0) {
        return NULL;
    }
    return template_;
}
#define mkdtemp stint_compat_mkdtemp
#endif
