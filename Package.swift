// swift-tools-version:6.0
// Stint for Swift: `.package(url: "https://github.com/<org>/stint.git", from: "0.1.0")`, product
// "Stint". The Swift layer is bindings/swift/Sources/Stint; the C API it wraps (module CStint)
// comes from:
// - Apple platforms: the XCFramework of the release (scripts/xcframework.sh builds it; the
//   release step that uploads it and updates `url` and `checksum` is in docs/ios.md);
// - Linux: libstint built from this checkout (`cargo build --release --lib`), found through
//   stint.pc (scripts/install.sh) or `-Xlinker -L<dir>`; scripts/swift.sh builds and
//   tests it that way.
import PackageDescription

#if os(Linux)
let cStint: Target = .systemLibrary(
    name: "CStint", path: "bindings/swift/Sources/CStint", pkgConfig: "stint")
#else
let cStint: Target = .binaryTarget(
    name: "CStint",
    url: "https://github.com/<org>/stint/releases/download/0.1.0/Stint.xcframework.zip",
    checksum: "0000000000000000000000000000000000000000000000000000000000000000")
#endif

let package = Package(
    name: "Stint",
    platforms: [.iOS(.v13), .macOS(.v10_15)],
    products: [
        .library(name: "Stint", targets: ["Stint"]),
    ],
    targets: [
        cStint,
        .target(
            name: "Stint",
            dependencies: ["CStint"],
            path: "bindings/swift/Sources/Stint",
            linkerSettings: [
                // What the static libstint.a of the XCFramework needs besides libSystem: the
                // certificate verifier and Rust's std.
                .linkedFramework("Security", .when(platforms: [.iOS, .macOS])),
                .linkedFramework("CoreFoundation", .when(platforms: [.iOS, .macOS])),
                .linkedLibrary("iconv", .when(platforms: [.iOS, .macOS])),
            ]
        ),
        .testTarget(
            name: "StintTests",
            dependencies: ["Stint"],
            path: "bindings/swift/Tests/StintTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
