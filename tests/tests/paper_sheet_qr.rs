//! A printed paper-key sheet scans back to its words: the PDF is rendered to an image
//! (poppler's pdftoppm) and its QR code read by a real decoder (zbar's zbarimg).

use std::process::Command;

use cobox_tests::binary;

#[test]
fn the_qr_code_on_the_pdf_sheet_scans_to_the_words() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ctl = |args: &[&str]| {
        let out = Command::new(binary("coboxctl"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ctl(&["identity"]);
    let text = ctl(&["keys", "export"]);
    let mut numbered: Vec<(usize, &str)> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter_map(|w| Some((w[0].strip_suffix('.')?.parse().ok()?, w[1])))
        .collect();
    numbered.sort();
    let words: Vec<&str> = numbered.into_iter().map(|(_, w)| w).collect();
    assert_eq!(words.len(), 24);

    let pdf = tmp.path().join("sheet.pdf");
    ctl(&[
        "keys",
        "export",
        "--format",
        "pdf",
        "-o",
        pdf.to_str().unwrap(),
    ]);
    let png_prefix = tmp.path().join("page");
    let status = Command::new("pdftoppm")
        .args(["-r", "150", "-png", "-singlefile"])
        .arg(&pdf)
        .arg(&png_prefix)
        .status()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(status.success());
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(tmp.path().join("page.png"))
        .output()
        .expect("zbarimg (zbar-tools) is installed");
    let scanned = String::from_utf8_lossy(&out.stdout);
    assert_eq!(scanned.trim(), words.join(" "));
}
