// swift-tools-version:5.7
// Swift binding of Stint, a thin layer over the C API of libstint (include/stint.h).
// Build libstint first (`cargo build` at the repository root); see README.md for the commands.
import PackageDescription

let package = Package(
    name: "Stint",
    platforms: [.iOS(.v13), .macOS(.v10_15)],
    products: [
        .library(name: "Stint", targets: ["Stint"]),
    ],
    targets: [
        // The C API: a module map over include/stint.h that links libstint. When stint.pc
        // (examples/gen-pkgconfig.sh) is on PKG_CONFIG_PATH, SwiftPM takes -L from it.
        // For iOS, replace this target with the XCFramework (README.md):
        //   .binaryTarget(name: "CStint", path: "CStint.xcframework"),
        .systemLibrary(name: "CStint", path: "Sources/CStint", pkgConfig: "stint"),
        .target(
            name: "Stint",
            dependencies: ["CStint"],
            linkerSettings: [
                // What a statically linked libstint (libstint.a, the XCFramework) needs on
                // Apple platforms besides libSystem: the certificate verifier and Rust's std.
                .linkedFramework("Security", .when(platforms: [.iOS, .macOS])),
                .linkedFramework("CoreFoundation", .when(platforms: [.iOS, .macOS])),
                .linkedLibrary("iconv", .when(platforms: [.iOS, .macOS])),
            ]
        ),
        .testTarget(name: "StintTests", dependencies: ["Stint"]),
    ]
)
