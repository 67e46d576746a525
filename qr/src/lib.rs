//! How an enrollment is shown in a terminal, by the CLI and in the PAM conversation alike: the
//! otpauth URI as a QR code drawn with Unicode half blocks (two modules per character cell
//! vertically, so a usual TOTP URI fits an 80-column terminal), and the key in groups of four.

use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

/// A base32 key in groups of four for typing by hand: `JBSW Y3DP EHPK 3PXP`. It is the
/// secret, so it is wiped when dropped.
pub fn group_key(key: &str) -> Zeroizing<String> {
    let mut grouped = Zeroizing::new(String::with_capacity(key.len() * 2));
    for (index, c) in key.chars().filter(|c| !c.is_whitespace()).enumerate() {
        if index > 0 && index % 4 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    grouped
}

/// Widest drawing that still fits a classic terminal.
pub const MAX_COLUMNS: usize = 80;
/// Modules of light margin on each side. The standard asks for 4; 2 is what
/// libpam-google-authenticator draws in terminals, and phones scan it. Each module saved is a
/// row of an 80x24 screen saved.
pub const QUIET_ZONE: usize = 2;

/// The terminal's background, which decides which modules are drawn with blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// Light text on a dark background (the usual terminal): light modules are blocks.
    Dark,
    /// Dark text on a light background: dark modules are blocks.
    Light,
}

/// Why no QR code can be drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrError {
    /// The text is too long to draw within [`MAX_COLUMNS`].
    TooWide { columns: usize },
    /// The text cannot be encoded at all.
    Encoding(String),
}

impl std::fmt::Display for QrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QrError::TooWide { columns } => write!(
                f,
                "the QR code would be {columns} columns wide, more than {MAX_COLUMNS}"
            ),
            QrError::Encoding(message) => write!(f, "cannot make a QR code: {message}"),
        }
    }
}

/// The smallest QR code for `text` (the version level L needs), at the strongest error
/// correction that still fits that version, if it fits [`MAX_COLUMNS`] with its quiet zone.
pub fn encode(text: &str) -> Result<QrCode, QrError> {
    let smallest = match QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L) {
        Ok(code) => code,
        Err(qrcode::types::QrError::DataTooLong) => {
            return Err(QrError::TooWide {
                columns: MAX_COLUMNS + 1,
            });
        }
        Err(error) => return Err(QrError::Encoding(error.to_string())),
    };
    let columns = smallest.width() + 2 * QUIET_ZONE;
    if columns > MAX_COLUMNS {
        return Err(QrError::TooWide { columns });
    }
    let version = smallest.version();
    for level in [EcLevel::H, EcLevel::Q, EcLevel::M] {
        if let Ok(code) = QrCode::with_version(text.as_bytes(), version, level) {
            return Ok(code);
        }
    }
    Ok(smallest)
}

/// Lines and columns the drawing of `text` takes, quiet zone included.
pub fn drawn_size(text: &str) -> Result<(usize, usize), QrError> {
    let side = encode(text)?.width() + 2 * QUIET_ZONE;
    Ok((side.div_ceil(2), side))
}

/// `uri` drawn for a terminal with the given background, with a quiet zone, one line per two
/// module rows, at most [`MAX_COLUMNS`] wide. The drawing encodes the secret, so it is wiped
/// when dropped.
pub fn render_qr(uri: &str, background: Background) -> Result<Zeroizing<String>, QrError> {
    let code = encode(uri)?;
    let width = code.width();
    let colors = Zeroizing::new(
        code.to_colors()
            .into_iter()
            .map(|color| color == Color::Dark)
            .collect::<Vec<bool>>(),
    );
    let side = width + 2 * QUIET_ZONE;
    // Whether the module at (x, y) of the drawing, quiet zone included, is drawn as a block;
    // below the last row is the terminal's own background.
    let block = |x: usize, y: usize| -> bool {
        if y >= side {
            return false;
        }
        let dark = x
            .checked_sub(QUIET_ZONE)
            .zip(y.checked_sub(QUIET_ZONE))
            .filter(|&(x, y)| x < width && y < width)
            .and_then(|(x, y)| colors.get(y * width + x).copied())
            .unwrap_or(false);
        dark == (background == Background::Light)
    };
    let mut drawing = Zeroizing::new(String::with_capacity(side * side * 2));
    for y in (0..side).step_by(2) {
        if y > 0 {
            drawing.push('\n');
        }
        for x in 0..side {
            drawing.push(match (block(x, y), block(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
    }
    Ok(drawing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_groups_of_four() {
        assert_eq!(
            group_key("JBSWY3DPEHPK3PXP").as_str(),
            "JBSW Y3DP EHPK 3PXP"
        );
        assert_eq!(
            group_key("JBSW Y3DP EHPK 3PX").as_str(),
            "JBSW Y3DP EHPK 3PX"
        );
        assert_eq!(group_key("ABCDEF").as_str(), "ABCD EF");
        assert_eq!(group_key("").as_str(), "");
    }
    use std::path::Path;
    use std::process::Command;

    /// What the daemon sends: issuer and account percent-encoded, a 160-bit key, the
    /// parameters apps assume left out.
    const URI: &str = "otpauth://totp/host.example.org:alice@host.example.org?\
        secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=host.example.org";

    fn columns(drawing: &str) -> usize {
        drawing
            .lines()
            .map(|line| line.chars().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_typical_uri_fits_80_columns_with_its_quiet_zone() {
        let drawing = render_qr(URI, Background::Dark).unwrap();
        let code = encode(URI).unwrap();
        let side = code.width() + 2 * QUIET_ZONE;
        assert!(columns(&drawing) <= MAX_COLUMNS, "{}", columns(&drawing));
        assert_eq!(columns(&drawing), side);
        assert_eq!(drawing.lines().count(), side.div_ceil(2));
        // 118 bytes: a version 6 code at level L (41 modules), 45 columns, 23 lines.
        assert_eq!(code.version(), qrcode::Version::Normal(6));
        assert_eq!(code.error_correction_level(), EcLevel::L);
        assert_eq!(side, 45);
        assert_eq!(drawn_size(URI).unwrap(), (23, 45));
        // Every line is as wide as the code; the first line is all quiet zone.
        assert!(drawing.lines().all(|line| line.chars().count() == side));
        assert!(drawing.lines().next().unwrap().chars().all(|c| c == '█'));
    }

    #[test]
    fn the_backgrounds_are_negatives_of_each_other() {
        let dark = render_qr(URI, Background::Dark).unwrap();
        let light = render_qr(URI, Background::Light).unwrap();
        let negative = |c: char| match c {
            ' ' => '█',
            '█' => ' ',
            '▀' => '▄',
            '▄' => '▀',
            other => other,
        };
        // Except the last line's unused lower half, which is blank in both.
        let dark_lines: Vec<&str> = dark.lines().collect();
        let light_lines: Vec<&str> = light.lines().collect();
        let last = dark_lines.len() - 1;
        for (index, (d, l)) in dark_lines.iter().zip(&light_lines).enumerate() {
            if index == last && encode(URI).unwrap().width() % 2 == 1 {
                continue;
            }
            assert_eq!(d.chars().map(negative).collect::<String>(), *l);
        }
    }

    #[test]
    fn a_long_uri_falls_back_to_a_lower_level_or_refuses() {
        let long_issuer = "a".repeat(60);
        let uri = format!(
            "otpauth://totp/{long_issuer}:bob%40{long_issuer}?secret=JBSWY3DPEHPK3PXP\
             JBSWY3DPEHPK3PXP&issuer={long_issuer}&algorithm=SHA512&digits=8&period=30"
        );
        let drawing = render_qr(&uri, Background::Dark).unwrap();
        assert!(columns(&drawing) <= MAX_COLUMNS);
        let far_too_long = "x".repeat(2000);
        assert!(matches!(
            render_qr(&far_too_long, Background::Dark),
            Err(QrError::TooWide { .. })
        ));
    }

    /// A drawing back to pixels as the terminal shows it (`true` = dark), inside a margin of
    /// terminal background, scaled.
    fn drawing_to_pixels(drawing: &str, background: Background, scale: usize) -> Vec<Vec<bool>> {
        let margin = 2;
        let width = columns(drawing) + 2 * margin;
        let background_dark = background == Background::Dark;
        let mut rows: Vec<Vec<bool>> = vec![vec![background_dark; width]; margin];
        for line in drawing.lines() {
            let mut top = vec![background_dark; margin];
            let mut bottom = vec![background_dark; margin];
            for c in line.chars() {
                let (t, b) = match c {
                    ' ' => (false, false),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    '█' => (true, true),
                    other => panic!("unexpected {other:?} in the drawing"),
                };
                // A drawn half is the text colour: light on a dark background.
                top.push(if background_dark { !t } else { t });
                bottom.push(if background_dark { !b } else { b });
            }
            top.resize(width, background_dark);
            bottom.resize(width, background_dark);
            rows.push(top);
            rows.push(bottom);
        }
        rows.extend(vec![vec![background_dark; width]; margin]);
        scale_up(&rows, scale)
    }

    fn matrix_to_pixels(code: &QrCode, scale: usize) -> Vec<Vec<bool>> {
        let side = code.width() + 2 * QUIET_ZONE;
        let colors = code.to_colors();
        let rows: Vec<Vec<bool>> = (0..side)
            .map(|y| {
                (0..side)
                    .map(|x| {
                        let inside =
                            |v: usize| (QUIET_ZONE..QUIET_ZONE + code.width()).contains(&v);
                        inside(x)
                            && inside(y)
                            && colors[(y - QUIET_ZONE) * code.width() + (x - QUIET_ZONE)]
                                == qrcode::Color::Dark
                    })
                    .collect()
            })
            .collect();
        scale_up(&rows, scale)
    }

    fn scale_up(rows: &[Vec<bool>], scale: usize) -> Vec<Vec<bool>> {
        rows.iter()
            .flat_map(|row| {
                let wide: Vec<bool> = row
                    .iter()
                    .flat_map(|&p| std::iter::repeat_n(p, scale))
                    .collect();
                std::iter::repeat_n(wide, scale)
            })
            .collect()
    }

    /// A plain (ASCII) PBM: 1 is black.
    fn write_pbm(path: &Path, pixels: &[Vec<bool>]) {
        let mut text = format!("P1\n{} {}\n", pixels[0].len(), pixels.len());
        for row in pixels {
            let line: Vec<&str> = row.iter().map(|&p| if p { "1" } else { "0" }).collect();
            text.push_str(&line.join(" "));
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    /// What zbarimg reads in the image, or `None` when zbarimg is not installed.
    fn zbarimg(path: &Path) -> Option<String> {
        let output = match Command::new("zbarimg")
            .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
            .arg(path)
            .output()
        {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("note: zbarimg is not installed (apt install zbar-tools); skipped");
                return None;
            }
            Err(error) => panic!("zbarimg: {error}"),
        };
        assert!(
            output.status.success(),
            "zbarimg failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(
            String::from_utf8(output.stdout)
                .unwrap()
                .trim_end_matches('\n')
                .to_owned(),
        )
    }

    #[test]
    fn the_module_matrix_decodes_back_to_the_uri() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("matrix.pbm");
        write_pbm(&path, &matrix_to_pixels(&encode(URI).unwrap(), 4));
        if let Some(decoded) = zbarimg(&path) {
            assert_eq!(decoded, URI);
        }
    }

    #[test]
    fn the_terminal_drawing_decodes_back_to_the_uri() {
        let dir = tempfile::tempdir().unwrap();
        for background in [Background::Dark, Background::Light] {
            let drawing = render_qr(URI, background).unwrap();
            let path = dir.path().join(format!("{background:?}.pbm"));
            write_pbm(&path, &drawing_to_pixels(&drawing, background, 4));
            if let Some(decoded) = zbarimg(&path) {
                assert_eq!(decoded, URI, "{background:?}");
            }
        }
    }
}
