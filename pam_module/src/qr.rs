//! The enrollment URI as a QR code in text, for the PAM conversation: Unicode half blocks
//! (`qrcode::render::unicode::Dense1x2`, two modules per character cell vertically) with the
//! quiet zone scanners need, drawn for the usual light-on-dark terminal.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};
use zeroize::Zeroizing;

/// Widest drawing that still fits a classic terminal.
pub const MAX_COLUMNS: usize = 80;
/// Modules of light margin on each side (the renderer's quiet zone).
pub const QUIET_ZONE: usize = 4;

/// `text` as a QR code drawing, one line per two module rows, at most [`MAX_COLUMNS`] wide
/// including the quiet zone; `None` if it cannot be drawn that small (the user then types the
/// key by hand). Error correction M if it fits, else L.
///
/// The drawing encodes the secret, so it is wiped when dropped.
pub fn render(text: &str) -> Option<Zeroizing<String>> {
    let code = [EcLevel::M, EcLevel::L].into_iter().find_map(|level| {
        QrCode::with_error_correction_level(text.as_bytes(), level)
            .ok()
            .filter(|code| code.width() + 2 * QUIET_ZONE <= MAX_COLUMNS)
    })?;
    // Light on dark: the terminal's text colour draws the QR code's light modules.
    Some(Zeroizing::new(
        code.render::<Dense1x2>()
            .quiet_zone(true)
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .build(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// What the daemon sends: issuer and account percent-encoded, a 160-bit key.
    const URI: &str = "otpauth://totp/host.example.org:alice%40host.example.org?\
        secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=host.example.org&algorithm=SHA1&\
        digits=6&period=30";

    fn columns(drawing: &str) -> usize {
        drawing
            .lines()
            .map(|line| line.chars().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_typical_uri_fits_with_its_quiet_zone() {
        let drawing = render(URI).unwrap();
        let side = columns(&drawing);
        assert!(side <= MAX_COLUMNS, "{side}");
        assert_eq!(drawing.lines().count(), side.div_ceil(2));
        assert!(drawing.lines().all(|line| line.chars().count() == side));
        // The first line is all quiet zone, drawn in the text colour.
        assert!(drawing.lines().next().unwrap().chars().all(|c| c == '█'));
        assert!(
            drawing
                .chars()
                .all(|c| matches!(c, ' ' | '█' | '▀' | '▄' | '\n'))
        );
    }

    #[test]
    fn too_long_is_none() {
        assert!(render(&"x".repeat(2000)).is_none());
    }

    /// The drawing back to pixels as a light-on-dark terminal shows it (`true` = dark), inside
    /// a margin of background, scaled up, as a plain PBM.
    fn write_pbm(drawing: &str, path: &Path) {
        let scale = 4;
        let margin = 2;
        let width = columns(drawing) + 2 * margin;
        let mut rows: Vec<Vec<bool>> = vec![vec![true; width]; margin];
        for line in drawing.lines() {
            let mut top = vec![true; margin];
            let mut bottom = vec![true; margin];
            for c in line.chars() {
                let (t, b) = match c {
                    ' ' => (false, false),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    '█' => (true, true),
                    other => panic!("unexpected {other:?}"),
                };
                // A drawn half is the (light) text colour.
                top.push(!t);
                bottom.push(!b);
            }
            top.resize(width, true);
            bottom.resize(width, true);
            rows.push(top);
            rows.push(bottom);
        }
        rows.extend(vec![vec![true; width]; margin]);
        let mut text = format!("P1\n{} {}\n", width * scale, rows.len() * scale);
        for row in &rows {
            let line: Vec<&str> = row
                .iter()
                .flat_map(|&p| std::iter::repeat_n(if p { "1" } else { "0" }, scale))
                .collect();
            for _ in 0..scale {
                text.push_str(&line.join(" "));
                text.push('\n');
            }
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_drawing_decodes_back_to_the_uri() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drawing.pbm");
        write_pbm(&render(URI).unwrap(), &path);
        let output = match Command::new("zbarimg")
            .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
            .arg(&path)
            .output()
        {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("note: zbarimg is not installed (apt install zbar-tools); skipped");
                return;
            }
            Err(error) => panic!("zbarimg: {error}"),
        };
        assert!(output.status.success(), "{output:?}");
        let decoded = String::from_utf8(output.stdout).unwrap();
        assert_eq!(decoded.trim_end_matches('\n'), URI);
    }
}
