//! The guest's screen: QEMU's QMP screendump, pictures as grey levels, and whether two
//! pictures show the same page. Used by the boot test's helm checks and by the benchmark
//! suite's `menu-on-screen` (ci/bench-boot), so it stands on std and png alone.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sends one QMP command (JSON) to the socket `qmp`; returns its answer line (`return` or
/// `error`), or an empty string when QEMU closed the socket first.
pub fn qmp_at(qmp: &Path, command: &str) -> String {
    let mut s = UnixStream::connect(qmp).expect("QMP socket");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    for cmd in ["{\"execute\":\"qmp_capabilities\"}", command] {
        writeln!(s, "{cmd}").unwrap();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return String::new();
            }
            if line.contains("\"return\"") || line.contains("\"error\"") {
                break;
            }
        }
    }
    line
}

/// The screen of the guest behind the QMP socket `qmp`, written to `ppm` (PPM, P6).
pub fn screendump_at(qmp: &Path, ppm: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(ppm);
    let answer = qmp_at(
        qmp,
        &format!(
            "{{\"execute\":\"screendump\",\"arguments\":{{\"filename\":\"{}\"}}}}",
            ppm.display()
        ),
    );
    if answer.contains("\"return\"") && ppm.exists() {
        Ok(())
    } else {
        Err(format!("screendump: {answer}"))
    }
}

/// A picture as grey levels.
pub struct Shot {
    pub width: usize,
    pub height: usize,
    grey: Vec<u8>,
}

fn grey(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
}

/// QEMU's screendump: binary PPM (P6, maxval 255).
pub fn read_ppm(path: &Path) -> Shot {
    let bytes = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P6", "{}", path.display());
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = &bytes[i + 1..];
    assert!(pixels.len() >= width * height * 3, "{}", path.display());
    let grey = pixels
        .chunks_exact(3)
        .take(width * height)
        .map(|p| grey(p[0], p[1], p[2]))
        .collect();
    Shot {
        width,
        height,
        grey,
    }
}

pub fn read_png(path: &Path) -> Shot {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("{}: {other:?}", path.display()),
    };
    let grey = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| grey(p[0], p[1], p[2]))
        .collect();
    Shot {
        width: info.width as usize,
        height: info.height as usize,
        grey,
    }
}

/// How alike two pictures of one size are over their top `rows`: the block means (16 px
/// squares) compared by correlation (the same structure) and mean difference (the same
/// brightness). Text rasterised by two machines differs in single pixels, never in blocks.
pub fn likeness(a: &Shot, b: &Shot, rows: usize) -> (f64, f64) {
    assert_eq!((a.width, a.height), (b.width, b.height), "sizes differ");
    const B: usize = 16;
    let means = |s: &Shot| -> Vec<f64> {
        let mut out = Vec::new();
        for by in 0..rows.min(s.height) / B {
            for bx in 0..s.width / B {
                let mut sum = 0u32;
                for y in by * B..(by + 1) * B {
                    for x in bx * B..(bx + 1) * B {
                        sum += s.grey[y * s.width + x] as u32;
                    }
                }
                out.push(sum as f64 / (B * B) as f64);
            }
        }
        out
    };
    let (x, y) = (means(a), means(b));
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy, mut diff) = (0.0, 0.0, 0.0, 0.0);
    for (p, q) in x.iter().zip(&y) {
        sxy += (p - mx) * (q - my);
        sxx += (p - mx) * (p - mx);
        syy += (q - my) * (q - my);
        diff += (p - q).abs();
    }
    let r = if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    };
    (r, diff / n)
}

/// Alike enough to be the same page: limits found from the kiosk's pictures against the
/// host's (r about 0.99, difference under 4 grey levels) with room for font hinting.
pub fn same_page(r: f64, diff: f64) -> bool {
    r >= 0.93 && diff <= 12.0
}

/// The rows of the screen every state of the main menu shares: the navigation bar and the
/// page's heading.
const HEADER_ROWS: usize = 144;

/// Takes the screen behind `qmp` every `every` until its top rows match `reference`'s;
/// returns the time from `started` (power-on), and keeps that picture in `ppm`. Gives up
/// after `limit` of looking, with what the screen last showed.
pub fn wait_for_top(
    qmp: &Path,
    started: Instant,
    reference: &Shot,
    ppm: &Path,
    every: Duration,
    limit: Duration,
) -> Result<Duration, String> {
    let t = Instant::now();
    let mut last;
    loop {
        match screendump_at(qmp, ppm) {
            Ok(()) => {
                let shot = read_ppm(ppm);
                if (shot.width, shot.height) == (reference.width, reference.height) {
                    let (r, diff) = likeness(&shot, reference, HEADER_ROWS);
                    if same_page(r, diff) {
                        eprintln!(
                            "helm screen: the main menu is on the screen {:.1} s after power-on \
                             (top rows r = {r:.3}, difference {diff:.1}); picture {}",
                            started.elapsed().as_secs_f64(),
                            ppm.display()
                        );
                        return Ok(started.elapsed());
                    }
                    last = format!("r = {r:.3}, difference {diff:.1}");
                } else {
                    last = format!("the screen is {}×{}", shot.width, shot.height);
                }
            }
            Err(e) => last = e,
        }
        if t.elapsed() > limit {
            return Err(format!(
                "the helm screen never showed the main menu ({last}); last picture {}",
                ppm.display()
            ));
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shot(f: impl Fn(usize, usize) -> u8) -> Shot {
        let (width, height) = (64, 48);
        let grey = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Shot {
            width,
            height,
            grey,
        }
    }

    #[test]
    fn likeness_tells_a_page_from_a_blank_or_another_one() {
        let page = shot(|x, y| if (x / 16 + y / 16) % 2 == 0 { 240 } else { 40 });
        let near = shot(|x, y| if (x / 16 + y / 16) % 2 == 0 { 230 } else { 50 });
        let blank = shot(|_, _| 255);
        let other = shot(|x, _| if x < 32 { 240 } else { 40 });
        assert!(same_page(
            likeness(&page, &near, 48).0,
            likeness(&page, &near, 48).1
        ));
        let (r, d) = likeness(&page, &blank, 48);
        assert!(!same_page(r, d), "{r} {d}");
        let (r, d) = likeness(&page, &other, 48);
        assert!(!same_page(r, d), "{r} {d}");
    }
}
