//! The enrollment screen: the QR code with the key beside it, all within the terminal (80x24
//! when its size is unknown), or, when the QR code cannot fit with the text, the key first.

use twofactor_proto::EnrollmentOffer;
use twofactor_qr::{Background, group_key, render_qr};
use zeroize::Zeroizing;

use crate::terminal::{Size, wrap};

/// Columns between the QR code and the text beside it.
const GAP: usize = 2;
/// Narrowest text column worth putting beside the QR code.
const MIN_TEXT_COLUMNS: usize = 30;

/// What is shown before the code is asked: the lines, and the QR code when it could not be
/// part of them.
#[derive(Debug)]
pub struct Screen {
    pub lines: Zeroizing<String>,
    pub qr_after: Option<QrAfter>,
    /// A QR code was wanted but the URI is too long for any.
    pub qr_impossible: bool,
}

/// A QR code too big for the terminal together with the key, shown only on request.
#[derive(Debug)]
pub struct QrAfter {
    pub drawing: Zeroizing<String>,
    pub rows: usize,
}

/// The screen for `offer` on a terminal of `size`. `invert_hint` is the command line that
/// draws the code for the other background (None: no QR code wanted).
pub fn offer_screen(
    offer: &EnrollmentOffer,
    qr: Option<Background>,
    invert_hint: &str,
    size: Size,
    // Lines already on the screen above (the "Replacing ..." note): they count too.
    lines_above: usize,
) -> Screen {
    let drawing = qr.and_then(|background| render_qr(&offer.otpauth_uri, background).ok());
    let prompt_rows = 1;
    if let Some(drawing) = drawing {
        let qr_columns = drawing
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        let qr_rows = drawing.lines().count();
        let text_columns = size.columns.saturating_sub(qr_columns + GAP);
        if text_columns >= MIN_TEXT_COLUMNS {
            let mut text = Zeroizing::new(format!(
                "Scan this QR code with your authenticator app. {invert_hint}\n\nOr add the \
                 account by hand:\n"
            ));
            text.push_str(&key_lines(offer, text_columns));
            let text = Zeroizing::new(wrap(&text, text_columns));
            let text_rows = text.lines().count();
            if lines_above + qr_rows.max(text_rows) + prompt_rows <= size.rows {
                return Screen {
                    lines: beside(&drawing, qr_columns, &text),
                    qr_after: None,
                    qr_impossible: false,
                };
            }
        }
        let mut text = Zeroizing::new(String::from(
            "Add the account to your authenticator app by hand:\n",
        ));
        text.push_str(&key_lines(offer, size.columns));
        text.push_str(&format!(
            "\nThe QR code needs {qr_rows} lines and {qr_columns} columns, more than fit here \
             with the key ({} by {}). To scan it instead, make the window taller, then press \
             Enter at the next question.",
            size.columns, size.rows
        ));
        return Screen {
            lines: Zeroizing::new(wrap(&text, size.columns)),
            qr_after: Some(QrAfter {
                drawing,
                rows: qr_rows,
            }),
            qr_impossible: false,
        };
    }
    let mut text = Zeroizing::new(String::from(
        "Add the account to your authenticator app by hand:\n",
    ));
    text.push_str(&key_lines(offer, size.columns));
    Screen {
        lines: Zeroizing::new(wrap(&text, size.columns)),
        qr_after: None,
        qr_impossible: qr.is_some(),
    }
}

/// Account, key (in groups of four, never split inside a group), type and deadline, wrapped
/// to `columns` with the values aligned.
fn key_lines(offer: &EnrollmentOffer, columns: usize) -> Zeroizing<String> {
    // The key in groups of four, eight or four (or two) groups to a line.
    let grouped = group_key(&offer.secret_base32);
    let groups: Vec<&str> = grouped.split(' ').collect();
    let per_line = [8, 4, 2]
        .into_iter()
        .find(|&n| 9 + n * 5 - 1 <= columns)
        .unwrap_or(1);
    let key = Zeroizing::new(
        groups
            .chunks(per_line)
            .map(|chunk| chunk.join(" "))
            .collect::<Vec<_>>()
            .join("\n         "),
    );
    let kind = format!(
        "time-based, {}, {} digits, every {} seconds",
        offer.algorithm, offer.digits, offer.period
    );
    let hanging = |label: &str, value: &str| {
        let options = textwrap::Options::new(columns.max(label.len() + 20))
            .initial_indent(label)
            .subsequent_indent("         ")
            .break_words(true)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        textwrap::fill(value, options)
    };
    let mut text = Zeroizing::new(hanging("Account: ", &offer.label));
    text.push_str(&format!("\nKey:     {}\n", key.as_str()));
    text.push_str(&hanging("Type:    ", &kind));
    text.push('\n');
    text.push_str(&format!(
        "\nConfirm within {} minutes with a code from the app.",
        offer.expires_in_seconds.div_ceil(60)
    ));
    text
}

/// The drawing's lines with `text`'s lines to their right.
fn beside(drawing: &str, qr_columns: usize, text: &str) -> Zeroizing<String> {
    let qr: Vec<&str> = drawing.lines().collect();
    let text: Vec<&str> = text.lines().collect();
    let mut screen = Zeroizing::new(String::with_capacity(drawing.len() + text.len() * 80));
    for row in 0..qr.len().max(text.len()) {
        if row > 0 {
            screen.push('\n');
        }
        let qr_line = qr.get(row).copied().unwrap_or("");
        let text_line = text.get(row).copied().unwrap_or("");
        screen.push_str(qr_line);
        if !text_line.is_empty() {
            let pad = qr_columns.saturating_sub(qr_line.chars().count()) + GAP;
            screen.push_str(&" ".repeat(pad));
            screen.push_str(text_line);
        }
    }
    screen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An offer as the daemon makes it for `user` on `host`.
    fn offer(user: &str, host: &str) -> EnrollmentOffer {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        EnrollmentOffer {
            otpauth_uri: format!(
                "otpauth://totp/{host}:{user}@{host}?secret={secret}&issuer={host}"
            ),
            secret_base32: secret.into(),
            label: format!("{host}:{user}@{host}"),
            issuer: host.into(),
            algorithm: twofactor_proto::Algorithm::Sha1.into(),
            digits: 6,
            period: 30,
            expires_in_seconds: 600,
        }
    }

    fn fits(screen: &Screen, size: Size) {
        let lines: Vec<&str> = screen.lines.lines().collect();
        // One more row for the question that follows.
        assert!(lines.len() < size.rows, "{}", screen.lines.as_str());
        assert!(
            lines
                .iter()
                .all(|line| line.chars().count() <= size.columns),
            "{}",
            screen.lines.as_str()
        );
    }

    const SMALL: Size = Size {
        columns: 80,
        rows: 24,
    };

    #[test]
    fn a_short_offer_has_its_qr_code_beside_the_key_on_80x24() {
        let screen = offer_screen(
            &offer("alice", "bastion"),
            Some(Background::Dark),
            "",
            SMALL,
            0,
        );
        fits(&screen, SMALL);
        assert!(screen.qr_after.is_none() && screen.lines.contains('█'));
        assert!(screen.lines.contains("Key:     JBSW Y3DP EHPK 3PXP\n"));
    }

    #[test]
    fn the_longest_names_show_the_key_first_on_80x24_and_the_code_beside_it_when_taller() {
        let (user, host) = ("u".repeat(64), "h".repeat(64));
        let long = offer(&user, &host);
        let screen = offer_screen(&long, Some(Background::Dark), "", SMALL, 0);
        fits(&screen, SMALL);
        assert!(!screen.lines.contains('█'));
        let qr = screen.qr_after.expect("the QR code on request");
        assert!(qr.rows > 24);
        // A terminal that is large enough gets it beside the key at once.
        let large = Size {
            columns: 120,
            rows: 50,
        };
        let screen = offer_screen(&long, Some(Background::Dark), "", large, 0);
        fits(&screen, large);
        assert!(screen.qr_after.is_none() && screen.lines.contains('█'));
        // Lines already on the screen count.
        let screen = offer_screen(
            &offer("alice", "bastion"),
            Some(Background::Dark),
            "",
            SMALL,
            10,
        );
        assert!(screen.qr_after.is_some());
    }

    #[test]
    fn no_qr_wanted_is_the_key_alone() {
        let screen = offer_screen(&offer("alice", "bastion"), None, "", SMALL, 0);
        assert!(screen.qr_after.is_none() && !screen.qr_impossible);
        assert!(!screen.lines.contains('█'));
    }
}
