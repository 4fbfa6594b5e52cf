//! Grounded captions end to end on the CPU: photo → classifier → few-shot prompt → SmolLM2
//! (f32 weights from the GGUF) → one streamed sentence.

mod common;

use burn::tensor::Device;
use common::models;
use glimpse::caption::{Captioner, Facts};
use glimpse::provision::{CAPTION_MODEL_NAME, WeightDType};
use glimpse::vision::preprocess::{decode, prepare};
use glimpse::{Classifier, top_k};

#[test]
fn a_photo_gets_a_streamed_sentence_that_names_its_class() {
    let dir = models();
    let device = Device::flex();
    let classifier =
        Classifier::from_burnpack(dir.read_weights(WeightDType::F32).unwrap(), device.clone())
            .unwrap();
    let photo = std::fs::read(dir.photos_dir().join("imagenet_00_243.jpg")).unwrap();
    let probs = classifier
        .classify(&[prepare(&decode(&photo).unwrap())])
        .unwrap()
        .remove(0);
    let top = top_k(&probs, 2);
    assert_eq!(top[0].label, "bull mastiff");

    let bytes = dir.read_file(CAPTION_MODEL_NAME, None).unwrap();
    let captioner = Captioner::from_gguf(&bytes, &device).unwrap();
    let mut streamed = String::new();
    let caption = captioner
        .caption(&Facts::from_top(&top).unwrap(), |piece| {
            streamed.push_str(piece)
        })
        .unwrap();

    eprintln!("caption: {caption:?}");
    assert!(
        !caption.fallback,
        "the model's own sentence names the class: {streamed:?}"
    );
    assert!(caption.text.to_lowercase().contains("mastiff"));
    assert_eq!(
        streamed.trim(),
        caption.text,
        "the streamed pieces make up the caption"
    );
    assert!(caption.text.ends_with('.') && caption.tokens <= glimpse::caption::MAX_TOKENS);
}

/// The facts of a sure classification of ImageNet class `index`.
fn sure(index: usize) -> Facts {
    let label = |i: usize| glimpse::vision::labels::imagenet()[i].name().to_string();
    Facts::from_top(&[
        glimpse::vision::Prediction {
            index,
            label: label(index),
            prob: 0.92,
        },
        glimpse::vision::Prediction {
            index: 242,
            label: label(242),
            prob: 0.03,
        },
    ])
    .unwrap()
}

#[test]
fn a_later_caption_of_the_same_case_reuses_the_prompt_beginning_and_says_the_same() {
    let dir = models();
    let device = Device::flex();
    let bytes = dir.read_file(CAPTION_MODEL_NAME, None).unwrap();
    let captioner = Captioner::from_gguf(&bytes, &device).unwrap();
    let first = captioner.caption(&sure(243), |_| {}).unwrap();
    assert_eq!(first.prompt_reused, 0, "nothing to reuse yet");
    let [later, espresso] =
        [817, 967].map(|class| captioner.caption(&sure(class), |_| {}).unwrap());
    eprintln!("{first:?}\n{later:?}\n{espresso:?}");
    for caption in [&later, &espresso] {
        assert!(
            caption.prompt_reused * 10 >= caption.prompt_tokens * 8,
            "{} of {} prompt tokens reused",
            caption.prompt_reused,
            caption.prompt_tokens
        );
    }

    // The same captions from a captioner that has run no prompt before.
    for (class, caption) in [(817, later), (967, espresso)] {
        let fresh = Captioner::from_gguf(&bytes, &device)
            .unwrap()
            .caption(&sure(class), |_| {})
            .unwrap();
        assert_eq!(fresh.prompt_reused, 0);
        let reused = caption.prompt_reused;
        assert_eq!(
            glimpse::caption::Caption {
                prompt_reused: 0,
                ..caption
            },
            fresh,
            "{reused} tokens reused"
        );
    }
}
