//! Both formats, every variant, from literal files.

use super::*;

/// What `google-authenticator -t -D -f -u -w 3 -Q NONE -q -e 5` writes.
const DEFAULT_FILE: &str = "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" WINDOW_SIZE 3\n\" TOTP_AUTH\n\
                            98522760\n17405866\n55807435\n59029570\n87217154\n";

/// `-t -d -r 3 -R 30 -w 17 -S 60`, after two logins.
const TUNED_FILE: &str = "OT2BGW4HU5MNEGNZD55Z45ZAMY\n\" RATE_LIMIT 3 30 1764613500\n\
                          \" WINDOW_SIZE 17\n\" STEP_SIZE 60\n\
                          \" DISALLOW_REUSE 29410224 29410226\n\" TOTP_AUTH\n81718281\n";

fn problem(result: Result<Parsed, Problem>) -> Problem {
    result.map(|parsed| parsed.notes.clone()).unwrap_err()
}

#[test]
fn a_default_file() {
    let parsed = google_authenticator(DEFAULT_FILE).unwrap();
    let e = &parsed.enrollment;
    assert_eq!(e.secret_base32, "JF6C54BAUUCPKN2XFK3Y5G5LLM");
    assert_eq!(parsed.secret_bits, 128);
    assert_eq!((e.algorithm.as_str(), e.digits, e.period), ("SHA1", 6, 30));
    assert_eq!(e.window, 1);
    assert_eq!(e.last_step, 0);
    assert_eq!(e.scratch_codes.len(), 5);
    assert_eq!(e.scratch_codes[0], "98522760");
    assert_eq!(e.source, "google-authenticator");
    assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
    assert!(
        parsed.notes[0].contains("no DISALLOW_REUSE"),
        "{:?}",
        parsed.notes
    );
}

#[test]
fn window_step_reuse_and_rate_limit() {
    let parsed = google_authenticator(TUNED_FILE).unwrap();
    let e = &parsed.enrollment;
    assert_eq!(e.window, 8, "(17 - 1) / 2");
    assert_eq!(e.period, 60);
    assert_eq!(e.last_step, 29_410_226, "the newest used step");
    assert_eq!(e.scratch_codes, ["81718281"]);
    assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
    assert!(parsed.notes[0].starts_with("RATE_LIMIT (3 logins every 30 s)"));
}

#[test]
fn window_sizes() {
    let with = |size: u32| {
        google_authenticator(&format!(
            "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" WINDOW_SIZE {size}\n\" DISALLOW_REUSE\n"
        ))
        .unwrap()
    };
    let one = with(1);
    assert_eq!(one.enrollment.window, 0);
    assert!(one.notes[0].contains("WINDOW_SIZE 1"), "{:?}", one.notes);
    assert_eq!(with(5).enrollment.window, 2);
    assert!(with(5).notes.is_empty());
    let even = with(4);
    assert_eq!(even.enrollment.window, 1);
    assert!(
        even.notes[0].contains("one more step ahead"),
        "{:?}",
        even.notes
    );
    let wide = with(99);
    assert_eq!(wide.enrollment.window, MAX_WINDOW);
    assert!(wide.notes[0].contains("wider"), "{:?}", wide.notes);
    assert!(matches!(
        google_authenticator("JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" WINDOW_SIZE 0\n"),
        Err(Problem::Malformed(_))
    ));
    // No WINDOW_SIZE line: google-authenticator's default of 3.
    let none = google_authenticator("JF6C54BAUUCPKN2XFK3Y5G5LLM\n").unwrap();
    assert_eq!(none.enrollment.window, 1);
    assert!(none.enrollment.scratch_codes.is_empty());
}

#[test]
fn hotp_is_refused() {
    let text = "QWKEADFS63ON7O5DOOSZLMXCRY\n\" WINDOW_SIZE 3\n\" HOTP_COUNTER 1\n20406225\n";
    let refused = problem(google_authenticator(text));
    assert!(matches!(refused, Problem::Unsupported(_)));
    assert!(refused.message().contains("counter-based"), "{refused:?}");
}

#[test]
fn short_and_bad_secrets() {
    // 80 bits, as old versions made: taken over, with advice to re-enroll later.
    let old = google_authenticator("JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n").unwrap();
    assert_eq!(old.secret_bits, 80);
    assert!(
        old.notes
            .iter()
            .any(|n| n.contains("80 bits, fewer than 128")),
        "{:?}",
        old.notes
    );
    let odd = google_authenticator("JBSWY3DPEHPK3PXPJBSWY3DP\n").unwrap();
    assert!(
        odd.notes.iter().any(|n| n.contains("has 120 bits")),
        "{:?}",
        odd.notes
    );
    // Lower case is the same key.
    let lower = google_authenticator("jf6c54bauucpkn2xfk3y5g5llm\n").unwrap();
    assert_eq!(lower.enrollment.secret_base32, "JF6C54BAUUCPKN2XFK3Y5G5LLM");
    let short = problem(google_authenticator("JBSWY3DP\n"));
    assert!(matches!(short, Problem::Unsupported(_)), "{short:?}");
    for bad in [
        "",
        "\n",
        "JBSW Y3DP EHPK 3PXP\n",
        "01234567\n",
        "JBSWY3DPEHPK3PX!\n",
    ] {
        assert!(
            matches!(problem(google_authenticator(bad)), Problem::Malformed(_)),
            "{bad:?}"
        );
    }
}

#[test]
fn step_sizes() {
    let fast = problem(google_authenticator(
        "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" STEP_SIZE 10\n",
    ));
    assert!(matches!(fast, Problem::Unsupported(_)), "{fast:?}");
    assert!(matches!(
        problem(google_authenticator(
            "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" STEP_SIZE x\n"
        )),
        Problem::Malformed(_)
    ));
}

#[test]
fn unknown_lines() {
    let odd = problem(google_authenticator(
        "JF6C54BAUUCPKN2XFK3Y5G5LLM\n1234567\n",
    ));
    assert_eq!(
        odd,
        Problem::Malformed("line 2 is neither an option nor an 8-digit scratch code".into())
    );
    // An unknown option is reported, not fatal; the message never quotes the line.
    let parsed = google_authenticator(
        "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" NEW_THING secret-ish\n\" DISALLOW_REUSE\r\n\r\n",
    )
    .unwrap();
    assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
    assert!(parsed.notes[0].contains("NEW_THING (line 2)"));
    assert!(!parsed.notes[0].contains("secret-ish"));
    assert!(matches!(
        problem(google_authenticator(
            "JF6C54BAUUCPKN2XFK3Y5G5LLM\n\" DISALLOW_REUSE 12 x\n"
        )),
        Problem::Malformed(_)
    ));
}

const HEX: &str = "3132333435363738393031323334353637383930";

fn entry(line: &str) -> Result<Parsed, Problem> {
    let mut entries = oath_usersfile(line);
    assert_eq!(entries.len(), 1);
    entries.remove(0).parsed
}

#[test]
fn oath_totp_entries() {
    let parsed = entry(&format!("HOTP/T30/6 alice - {HEX}")).unwrap();
    let e = &parsed.enrollment;
    // RFC 6238's SHA1 seed "12345678901234567890" in base32.
    assert_eq!(e.secret_base32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    assert_eq!((e.digits, e.period, e.window, e.last_step), (6, 30, 0, 0));
    assert!(e.scratch_codes.is_empty());
    assert_eq!(e.source, "pam_oath");
    assert_eq!(parsed.notes.len(), 1, "only the window: {:?}", parsed.notes);

    let e = entry(&format!("HOTP/T60\tbob\t-\t{}", HEX.to_uppercase())).unwrap();
    assert_eq!((e.enrollment.digits, e.enrollment.period), (6, 60));
    let e = entry(&format!("HOTP/T30/8 carol + {HEX}")).unwrap();
    assert_eq!(e.enrollment.digits, 8);
    assert_eq!(e.notes.len(), 1, "+ is not a PIN: {:?}", e.notes);
}

#[test]
fn oath_pins_are_reported() {
    let parsed = entry(&format!("HOTP/T30 alice 1234 {HEX}")).unwrap();
    assert!(
        parsed.notes[0].contains("PIN does not carry over"),
        "{:?}",
        parsed.notes
    );
    assert!(!parsed.notes.iter().any(|n| n.contains("1234")));
}

#[test]
fn oath_event_based_entries_are_refused() {
    for token in ["HOTP", "HOTP/E", "HOTP/E/8"] {
        let refused = problem(entry(&format!("{token} alice - {HEX}")));
        assert!(
            matches!(refused, Problem::Unsupported(_)),
            "{token}: {refused:?}"
        );
        assert!(refused.message().contains("event-based"), "{refused:?}");
    }
    for token in [
        "TOTP",
        "HOTP/X30",
        "HOTP/T30/9",
        "HOTP/T30/6/1",
        "HOTP/T",
        "HOTPX",
    ] {
        assert!(
            matches!(
                problem(entry(&format!("{token} alice - {HEX}"))),
                Problem::Malformed(_)
            ),
            "{token}"
        );
    }
    assert!(matches!(
        problem(entry(&format!("HOTP/T5 alice - {HEX}"))),
        Problem::Unsupported(_)
    ));
}

#[test]
fn oath_bad_fields() {
    assert!(matches!(
        problem(entry("HOTP/T30 alice - 31323")),
        Problem::Malformed(_)
    ));
    assert!(matches!(
        problem(entry("HOTP/T30 alice - xyz0")),
        Problem::Malformed(_)
    ));
    assert!(matches!(
        problem(entry("HOTP/T30 alice -")),
        Problem::Malformed(_)
    ));
    assert!(matches!(
        problem(entry("HOTP/T30 alice")),
        Problem::Malformed(_)
    ));
    // 64 bits: too short to take over.
    assert!(matches!(
        problem(entry("HOTP/T30 alice - 3132333435363738")),
        Problem::Unsupported(_)
    ));
    // 80 bits: taken over, with advice to re-enroll later.
    let short = entry("HOTP/T30 alice - 31323334353637383930").unwrap();
    assert!(
        short.notes.iter().any(|n| n.contains("80 bits")),
        "{:?}",
        short.notes
    );
}

#[test]
fn oath_files_keep_line_numbers_and_skip_comments() {
    let text = format!(
        "# users.oath\n\nHOTP/T30 alice - {HEX}\nHOTP bob - {HEX}\n  \nHOTP/T30/6 carol - {HEX} 0\n"
    );
    let entries = oath_usersfile(&text);
    let summary: Vec<(usize, Option<&str>, bool)> = entries
        .iter()
        .map(|e| (e.line, e.user.as_deref(), e.parsed.is_ok()))
        .collect();
    assert_eq!(
        summary,
        [
            (3, Some("alice"), true),
            (4, Some("bob"), false),
            (6, Some("carol"), true)
        ]
    );
}

#[test]
fn oath_the_last_code_used_goes_to_the_daemon_and_is_never_shown() {
    let line = format!("HOTP/T30/8 alice - {HEX} 0 07081804 2005-03-18T01:58:29L");
    let parsed = oath_usersfile(&line).remove(0).parsed.unwrap();
    assert_eq!(parsed.enrollment.last_code, "07081804");
    assert_eq!(parsed.enrollment.last_step, 0);
    assert!(parsed.notes.iter().any(|n| n.contains("stays spent")));
    assert!(!format!("{parsed:?}").contains("07081804"));
    // A placeholder or a code of another length is not a code used.
    for last in ["-", "0708180", "0708180x"] {
        let line = format!("HOTP/T30/8 alice - {HEX} 0 {last}");
        let parsed = oath_usersfile(&line).remove(0).parsed.unwrap();
        assert_eq!(parsed.enrollment.last_code, "", "{last}");
        assert!(!parsed.notes.iter().any(|n| n.contains("stays spent")));
    }
}
