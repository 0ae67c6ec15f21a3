import Foundation
import XCTest

@testable import Stint

final class OptionsTests: StintTestCase {
    func testDefaultOptionsHoldOnlyKeepOpenWhileForegroundTrue() throws {
        // The library's defaults, but keepOpenWhileForeground: true here, false in C.
        XCTAssertTrue(StintOptions().keepOpenWhileForeground)
        XCTAssertEqual(try StintOptions().jsonString(), #"{"keepOpenWhileForeground":true}"#)
    }

    func testEveryOptionIsEncodedUnderTheCApiKeyWithItsJsonType() throws {
        let options = StintOptions(
            sessionTimeoutInSeconds: 900,
            keepOpenWhileForeground: true,
            dataDirectory: "/var/mobile/Library/Application Support/stint",
            baseURL: "https://collector.example.com/v1",
            flushIntervalInSeconds: 30,
            maxQueuedDatapoints: 5000,
            logLevel: .debug,
            requireConsent: true,
            appVersion: "2.1.0")
        XCTAssertEqual(
            try options.jsonString(),
            #"{"appVersion":"2.1.0","baseUrl":"https://collector.example.com/v1","#
                + #""dataDirectory":"/var/mobile/Library/Application Support/stint","#
                + #""flushIntervalInSeconds":30,"keepOpenWhileForeground":true,"logLevel":"debug","#
                + #""maxQueuedDatapoints":5000,"requireConsent":true,"sessionTimeoutInSeconds":900}"#)
    }

    func testOnlyTheOptionsThatAreSetAreEncoded() throws {
        var options = StintOptions()
        options.keepOpenWhileForeground = false
        XCTAssertEqual(try options.jsonString(), #"{"keepOpenWhileForeground":false}"#)
        options = StintOptions(dataDirectory: "/tmp/a \"quoted\" dir")
        XCTAssertEqual(
            try options.jsonString(),
            #"{"dataDirectory":"/tmp/a \"quoted\" dir","keepOpenWhileForeground":true}"#)
    }

    func testEveryLogLevelIsEncodedAsTheCApiName() throws {
        for level in StintOptions.LogLevel.allCases {
            XCTAssertEqual(
                try StintOptions(logLevel: level).jsonString(),
                #"{"keepOpenWhileForeground":true,"logLevel":"\#(level.rawValue)"}"#)
        }
        XCTAssertEqual(
            StintOptions.LogLevel.allCases.map { $0.rawValue }, ["off", "error", "warn", "info", "debug"])
    }

    func testOptionsDecodeFromTheirJson() throws {
        let json = #"{"sessionTimeoutInSeconds":60,"logLevel":"warn","baseUrl":"https://c.example"}"#
        let options = try JSONDecoder().decode(StintOptions.self, from: Data(json.utf8))
        XCTAssertEqual(
            options,
            StintOptions(sessionTimeoutInSeconds: 60, baseURL: "https://c.example", logLevel: .warn))
        XCTAssertTrue(options.keepOpenWhileForeground, "missing from the JSON: true, as by default")
        XCTAssertEqual(try JSONDecoder().decode(StintOptions.self, from: Data(try options.jsonString().utf8)), options)
    }

    func testTheLibraryAcceptsEveryOption() throws {
        for level in StintOptions.LogLevel.allCases {
            let options = StintOptions(
                sessionTimeoutInSeconds: 1,
                keepOpenWhileForeground: true,
                dataDirectory: dataDirectory.path,
                baseURL: "http://127.0.0.1:1",
                flushIntervalInSeconds: 86_400,
                maxQueuedDatapoints: 100,
                logLevel: level)
            try Stint.initialize(apiKey: "swift-test-key", options: options)
            try Stint.shutdown(timeout: 1)  // nothing recorded: nothing to deliver
        }
    }
}
