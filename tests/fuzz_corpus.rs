//! Every committed fuzz corpus file (`fuzz/corpus/<target>/`), replayed through the same
//! functions the cargo-fuzz targets call (`glimpse::fuzzing`): the seeds, and each input that
//! once crashed a target, kept as its regression test. CI's smoke test for the fuzzers; the
//! fuzzing itself is `npm run fuzz` (nightly).
//!
//! Inputs in the weight containers' formats (burnpack, GGUF) are never committed: the burnpack
//! seeds are made here in memory, the GGUF ones by `npm run fuzz` (and replayed when present);
//! the GGUF inputs that once crashed a target are unit tests in `src/caption/`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use glimpse::fuzzing;

/// Targets whose corpus is generated, not committed (see above).
const GENERATED: [&str; 3] = ["burnpack", "gguf", "gguf_tokenizer"];

/// A fuzz target: what it feeds on its input.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 9] = [
    ("gguf", fuzzing::gguf),
    ("gguf_tokenizer", fuzzing::gguf_tokenizer),
    ("burnpack", fuzzing::burnpack),
    ("manifest", fuzzing::manifest),
    ("image", fuzzing::image),
    ("rgba", fuzzing::rgba),
    ("resample", fuzzing::resample),
    ("class_set", fuzzing::class_set),
    ("labels", fuzzing::labels),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_file_is_handled_without_a_panic() {
    let started = Instant::now();
    let mut failures = Vec::new();
    for (target, run) in TARGETS {
        let generated = GENERATED.contains(&target);
        let mut inputs: Vec<(String, Vec<u8>)> = match std::fs::read_dir(corpus_dir(target)) {
            Ok(entries) => entries
                .map(|entry| entry.unwrap().path())
                .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
                .collect(),
            Err(_) if generated => Vec::new(),
            Err(e) => panic!("fuzz/corpus/{target}: {e}"),
        };
        if target == "burnpack" {
            let made = std::cell::RefCell::new(Vec::new());
            seeds::burnpack(&|_, name: &str, bytes: &[u8]| {
                made.borrow_mut()
                    .push((format!("(made here) {name}"), bytes.to_vec()))
            });
            inputs.extend(made.into_inner());
        }
        inputs.sort();
        assert!(
            generated || !inputs.is_empty(),
            "fuzz/corpus/{target} holds no seeds"
        );
        let target_started = Instant::now();
        for (name, data) in &inputs {
            if catch_unwind(AssertUnwindSafe(|| run(data))).is_err() {
                failures.push(name.clone());
            }
        }
        eprintln!(
            "{target}: {} inputs in {:.2} s",
            inputs.len(),
            target_started.elapsed().as_secs_f64()
        );
    }
    eprintln!("all corpora in {:.2} s", started.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "these inputs panicked: {failures:#?}");
}

/// Writes the seeds that are not copies of files (run with `-- --ignored`); the GGUF seeds
/// come from the tiny-LLaMA fixture generator, `node fuzz/gguf-seeds.mjs`.
#[test]
#[ignore]
fn write_seeds() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    seeds::burnpack(&write);
    seeds::manifest(&write);
    seeds::images(&write);
    seeds::rgba(&write);
    seeds::resample(&write);
    seeds::class_set(&write);
    seeds::labels(&write);
}

mod seeds {
    use std::io::Cursor;
    use std::path::Path;

    use burn::tensor::DType;
    use glimpse::fuzzing::Small;
    use glimpse::provision::convert::{burnpack_bytes, int8_burnpack_bytes};
    use glimpse::vision::teach::{ClassSet, FEATURES};
    use image::{ImageFormat, RgbaImage};

    type Write<'a> = &'a dyn Fn(&str, &str, &[u8]);

    pub fn burnpack(write: Write) {
        let small = Small::new();
        let f32 = burnpack_bytes(&small, DType::F32, "small", "fuzz seeds").unwrap();
        let f16 = burnpack_bytes(&small, DType::F16, "small", "fuzz seeds").unwrap();
        write("burnpack", "small-f32.bpk", &f32);
        write("burnpack", "small-f16.bpk", &f16);
        let int8 = int8_burnpack_bytes(&small, |_| false, "small", "fuzz seeds").unwrap();
        write("burnpack", "small-int8.bpk", &int8);
        write("burnpack", "small-truncated.bpk", &f32[..f32.len() / 2]);
        write("burnpack", "zip.bpk", b"PK\x03\x04 this is a zip file");
    }

    pub fn manifest(write: Write) {
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/manifest.json");
        if let Ok(real) = std::fs::read(real) {
            write("manifest", "models.json", &real);
        }
        let hash = "ab".repeat(32);
        write(
            "manifest",
            "traversal.json",
            format!(
                r#"{{"models":[{{"name":"efficientnet-lite0","file":"../../etc/passwd","bytes":9,"sha256":"{hash}","dtype":"f16"}}],"source":"x"}}"#
            )
            .as_bytes(),
        );
        write("manifest", "empty.json", br#"{"models":[],"source":""}"#);
    }

    fn encoded(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x * 40) as u8, (y * 60) as u8, 128, 255])
        });
        let mut out = Cursor::new(Vec::new());
        match format {
            ImageFormat::Jpeg | ImageFormat::Bmp => image::DynamicImage::ImageRgba8(image)
                .to_rgb8()
                .write_to(&mut out, format),
            _ => image.write_to(&mut out, format),
        }
        .unwrap();
        out.into_inner()
    }

    /// A PNG that claims `width`×`height` but carries almost no pixel data (as in
    /// `tests/bad_input.rs`).
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [
            (&b"IHDR"[..], &ihdr[..]),
            (b"IDAT", &[0x78, 0x9c, 0x03, 0x00][..]),
            (b"IEND", &[][..]),
        ] {
            out.extend((data.len() as u32).to_be_bytes());
            let chunk = [kind, data].concat();
            out.extend(&chunk);
            out.extend(crc32(&chunk).to_be_bytes());
        }
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    pub fn images(write: Write) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for entry in std::fs::read_dir(&fixtures).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if name.ends_with(".mjs") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            write("image", &name, &bytes);
            if name == "baseline.jpg" || name == "palette.png" {
                write("image", &format!("half-{name}"), &bytes[..bytes.len() / 2]);
            }
        }
        for (format, name) in [
            (ImageFormat::Png, "small.png"),
            (ImageFormat::Jpeg, "small.jpg"),
            (ImageFormat::Gif, "small.gif"),
            (ImageFormat::Bmp, "small.bmp"),
            (ImageFormat::WebP, "small.webp"),
        ] {
            write("image", name, &encoded(format, 5, 3));
        }
        write("image", "notes.jpg", b"these are notes, not an image");
        write("image", "empty.png", b"");
        write("image", "zero.png", &png_header(0, 0));
        write("image", "dot.png", &encoded(ImageFormat::Png, 1, 1));
        write("image", "huge.png", &png_header(30_000, 30_000));
        write("image", "strip.png", &encoded(ImageFormat::Png, 40, 2));
    }

    fn frame(width: u16, height: u16, bbox: [u16; 4], pixels: usize) -> Vec<u8> {
        let mut out: Vec<u8> = [width, height]
            .into_iter()
            .chain(bbox)
            .flat_map(u16::to_le_bytes)
            .collect();
        out.extend((0..pixels * 4).map(|i| (i * 37) as u8));
        out
    }

    pub fn rgba(write: Write) {
        write("rgba", "2x2.rgba", &frame(2, 2, [0, 0, 2, 2], 4));
        write("rgba", "7x5-box.rgba", &frame(7, 5, [1, 1, 4, 3], 35));
        write("rgba", "40x2-strip.rgba", &frame(40, 2, [30, 0, 40, 2], 80));
        write(
            "rgba",
            "2x40-strip.rgba",
            &frame(2, 40, [0, 0, 65535, 65535], 80),
        );
        write("rgba", "short.rgba", &frame(4, 4, [0, 0, 1, 1], 3));
        write("rgba", "empty.rgba", &frame(0, 0, [0, 0, 0, 0], 0));
        write("rgba", "1x9.rgba", &frame(1, 9, [0, 0, 1, 9], 9));
    }

    /// `[source w, h, new w, h, window x, y, w, h, rgba]`, then pixels.
    pub fn resample(write: Write) {
        let seed = |name: &str, head: [u8; 9], pixels: &[u8]| {
            write("resample", name, &[&head[..], pixels].concat())
        };
        seed(
            "shrink-rgb",
            [200, 150, 107, 80, 10, 5, 60, 70, 0],
            &[9, 200, 31, 77],
        );
        seed(
            "shrink-rgba",
            [255, 97, 91, 35, 0, 0, 91, 35, 1],
            &[1, 2, 3, 4, 250],
        );
        seed("stretch", [3, 2, 255, 170, 16, 16, 224, 140, 0], &[0, 255]);
        seed("same-size", [64, 48, 64, 48, 3, 4, 20, 20, 1], &[]);
        seed(
            "one-axis",
            [120, 30, 120, 200, 0, 100, 120, 100, 0],
            &[5, 6, 7],
        );
        seed("empty", [0; 9], &[]);
        write("resample", "short", &[1, 2, 3]);
    }

    fn feature(axis: usize, jitter: f32) -> Vec<f32> {
        let mut v = vec![0.01; FEATURES];
        v[axis] = 1.0;
        v[(axis + 7) % FEATURES] += jitter;
        v
    }

    pub fn class_set(write: Write) {
        let mut set = ClassSet::default();
        for i in 0..2 {
            set.add("mug", vec![feature(0, i as f32 * 0.1)]).unwrap();
            set.add("plant ☘", vec![feature(1, i as f32 * 0.1)])
                .unwrap();
        }
        write("class_set", "untrained.json", set.to_json().as_bytes());
        set.train().unwrap();
        write("class_set", "trained.json", set.to_json().as_bytes());
        let mut one = ClassSet::default();
        one.add("only", vec![feature(3, 0.0)]).unwrap();
        write("class_set", "one-class.json", one.to_json().as_bytes());
        write(
            "class_set",
            "foreign.json",
            br#"{"format":"something-else","version":1}"#,
        );
        write(
            "class_set",
            "newer.json",
            br#"{"format":"glimpse-teachable-classes","version":2,"backbone":"efficientnet-lite0","classes":[]}"#,
        );
        write(
            "class_set",
            "empty-head.json",
            br#"{"format":"glimpse-teachable-classes","version":1,"backbone":"efficientnet-lite0","classes":[],"head":{"kind":"nearest-class-mean","temperature":16,"means":[]}}"#,
        );
        write("class_set", "array.json", b"[]");
    }

    pub fn labels(write: Write) {
        let many: Vec<String> = (0..1001).map(|i| format!("l{i}")).collect();
        let cases: [(&str, String); 10] = [
            ("typed.txt", " dog, cat ,,Dog, 猫, 🐶 ".into()),
            ("case.txt", "Élan, élan\nÉLAN\nStraße,straße\nİstanbul, ǅ".into()),
            ("blank.txt", " , ,".into()),
            ("long.txt", "x".repeat(201)),
            ("many.txt", many.join(",")),
            ("plurals.txt", "dogs, mice, butterflies, wolves, women, boxes, Musical_Instrument".into()),
            ("joiners.txt", "👨‍👩‍👧, e\u{301}, \u{feff}bird, \u{200b}, \u{202e}tac".into()),
            ("scripts.txt", "собака, كلب, 狗, कुत्ता, 🏳️‍🌈, \u{0}".into()),
            ("foolbox.txt", "dog, cat, bird, fish, insect, vehicle, food, fruit, building, furniture, clothing, musical instrument, plant, tool, container, person".into()),
            ("lines.txt", "dog\r\ncat\n\nbird,\tfish".into()),
        ];
        for (name, text) in cases {
            write("labels", name, text.as_bytes());
        }
    }
}
