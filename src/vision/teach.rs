//! Teachable classes: few-shot transfer learning on EfficientNet-Lite0's 1280-d pooled
//! features. Each example is kept as the features of a few augmented views; training fits a
//! nearest-class-mean head (cosine similarity to each class's mean direction, turned into
//! probabilities by a softmax whose temperature is fitted on leave-one-out predictions).
//!
//! A whole set (classes, examples, trained head) is one JSON document: what the page keeps
//! in IndexedDB, what "export" downloads and what `glimpse classify --head` reads.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::error::{GlimpseError, Result};

/// Width of the pooled features the head reads.
pub const FEATURES: usize = 1280;
/// What a file says it is, so that a foreign JSON file is refused by name.
pub const FORMAT: &str = "glimpse-teachable-classes";
pub const VERSION: u32 = 1;
const BACKBONE: &str = "efficientnet-lite0";
/// A set holds at most this many classes (a larger one is refused, made or imported).
pub const MAX_CLASSES: usize = 1000;
/// An exported set's JSON over this many bytes is refused before it is parsed.
pub const MAX_SET_BYTES: usize = 50_000_000;

/// Temperatures tried when calibrating; cosine scores differ by a few hundredths between
/// classes, so useful values are large.
const TEMPERATURES: [f32; 12] = [
    2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0,
];

/// One example: the features of each augmented view (the plain view first).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub views: Vec<Vec<f32>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaughtClass {
    pub name: String,
    pub examples: Vec<Example>,
}

/// How well a class is recognized when each of its examples is left out of training in turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    pub name: String,
    pub correct: usize,
    /// Examples that could be held out (a class needs two for one to be left out).
    pub total: usize,
}

/// A trained nearest-class-mean head.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub names: Vec<String>,
    /// Unit-length mean direction of each class.
    pub means: Vec<Vec<f32>>,
    pub temperature: f32,
}

/// A picture is like a taught class when its features point this close to the class's mean
/// direction (cosine). The head's probabilities are chances *among* the taught classes, so a
/// picture of none of them still spreads 100% over them; this says when that is the case.
/// Measured on crops of the foolbox photos (`tests/teach.rs`): held-out crops of a taught
/// photo reach 0.64–0.99 with two shots, crops of other photos at most 0.42.
pub const RESEMBLES: f32 = 0.5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaughtPrediction {
    pub label: String,
    /// The chance among the taught classes, 0–1 (softmax calibrated on held-out examples).
    pub prob: f32,
    /// Cosine similarity of the picture's features to the class's mean direction.
    pub similarity: f32,
    /// `similarity` reaches [`RESEMBLES`]: the picture looks like the class's examples.
    pub resembles: bool,
}

/// Classes, their examples and (once trained) the head.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassSet {
    pub classes: Vec<TaughtClass>,
    pub head: Option<Head>,
    pub accuracy: Vec<ClassAccuracy>,
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn softmax(scores: &[f32], temperature: f32) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores
        .iter()
        .map(|s| ((s - max) * temperature).exp())
        .collect();
    let total: f32 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

impl Head {
    /// Probabilities of the taught classes for one feature vector, best first.
    pub fn predict(&self, features: &[f32]) -> Vec<TaughtPrediction> {
        let feature = unit(features.to_vec());
        let scores: Vec<f32> = self.means.iter().map(|m| dot(&feature, m)).collect();
        let mut out: Vec<TaughtPrediction> = softmax(&scores, self.temperature)
            .into_iter()
            .zip(&self.names)
            .zip(&scores)
            .map(|((prob, name), &similarity)| TaughtPrediction {
                label: name.clone(),
                prob,
                similarity,
                resembles: similarity >= RESEMBLES,
            })
            .collect();
        out.sort_by(|a, b| b.prob.total_cmp(&a.prob));
        out
    }
}

impl ClassSet {
    /// Adds an example to `name`, creating the class if it is new.
    pub fn add(&mut self, name: &str, views: Vec<Vec<f32>>) -> Result<()> {
        let name = name.trim();
        if name.is_empty() {
            return Err(GlimpseError::InvalidArgument("a class needs a name".into()));
        }
        if views.is_empty() || views.iter().any(|v| v.len() != FEATURES) {
            return Err(GlimpseError::InvalidArgument(format!(
                "an example must hold {FEATURES}-wide feature vectors"
            )));
        }
        let index = match self.classes.iter().position(|c| c.name == name) {
            Some(i) => i,
            None if self.classes.len() >= MAX_CLASSES => {
                return Err(GlimpseError::InvalidArgument(format!(
                    "a set holds at most {MAX_CLASSES} classes; remove one before adding '{name}'"
                )));
            }
            None => {
                self.classes.push(TaughtClass {
                    name: name.to_string(),
                    examples: Vec::new(),
                });
                self.classes.len() - 1
            }
        };
        self.classes[index].examples.push(Example { views });
        Ok(())
    }

    /// Removes a class with its examples; the head must be trained again.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.classes.len();
        self.classes.retain(|c| c.name != name);
        before != self.classes.len()
    }

    /// Fits the head on every view of every example and measures leave-one-out accuracy.
    pub fn train(&mut self) -> Result<&Head> {
        if self.classes.len() < 2 {
            return Err(GlimpseError::InvalidArgument(format!(
                "training needs at least two classes with examples; there {} {}",
                if self.classes.len() == 1 { "is" } else { "are" },
                self.classes.len()
            )));
        }
        if let Some(empty) = self.classes.iter().find(|c| c.examples.is_empty()) {
            return Err(GlimpseError::InvalidArgument(format!(
                "class '{}' has no examples yet: add a photo or a camera shot first",
                empty.name
            )));
        }
        // Per class: the sum of its unit-length views, and each example's share of it.
        let sums: Vec<Vec<f32>> = self.classes.iter().map(class_sum).collect();
        let means: Vec<Vec<f32>> = sums.iter().map(|s| unit(s.clone())).collect();

        // Leave-one-out: each example's plain view against the means without that example.
        let mut held_out = Vec::new(); // (class, scores)
        let mut accuracy = Vec::new();
        for (c, class) in self.classes.iter().enumerate() {
            let mut correct = 0;
            let mut total = 0;
            if class.examples.len() >= 2 {
                for example in &class.examples {
                    let mut own = sums[c].clone();
                    for view in &example.views {
                        let view = unit(view.clone());
                        own.iter_mut().zip(&view).for_each(|(s, v)| *s -= v);
                    }
                    let own = unit(own);
                    let query = unit(example.views[0].clone());
                    let scores: Vec<f32> = (0..self.classes.len())
                        .map(|k| dot(&query, if k == c { &own } else { &means[k] }))
                        .collect();
                    total += 1;
                    if argmax(&scores) == c {
                        correct += 1;
                    }
                    held_out.push((c, scores));
                }
            }
            accuracy.push(ClassAccuracy {
                name: class.name.clone(),
                correct,
                total,
            });
        }
        let temperature = calibrate(&held_out);
        self.accuracy = accuracy;
        self.head = Some(Head {
            names: self.classes.iter().map(|c| c.name.clone()).collect(),
            means,
            temperature,
        });
        Ok(self.head.as_ref().expect("just trained"))
    }

    pub fn example_count(&self) -> usize {
        self.classes.iter().map(|c| c.examples.len()).sum()
    }
}

fn class_sum(class: &TaughtClass) -> Vec<f32> {
    let mut sum = vec![0.0; FEATURES];
    for view in class.examples.iter().flat_map(|e| &e.views) {
        let view = unit(view.clone());
        sum.iter_mut().zip(&view).for_each(|(s, v)| *s += v);
    }
    sum
}

fn argmax(values: &[f32]) -> usize {
    (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0)
}

/// The temperature with the best held-out log-likelihood (a middle value when nothing could
/// be held out).
fn calibrate(held_out: &[(usize, Vec<f32>)]) -> f32 {
    if held_out.is_empty() {
        return 16.0;
    }
    let nll = |t: f32| -> f32 {
        held_out
            .iter()
            .map(|(c, scores)| -softmax(scores, t)[*c].max(1e-12).ln())
            .sum()
    };
    TEMPERATURES
        .into_iter()
        .min_by(|&a, &b| nll(a).total_cmp(&nll(b)))
        .expect("temperatures are listed")
}

// ---- The JSON document ----

#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    version: u32,
    backbone: String,
    classes: Vec<ClassDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<HeadDocument>,
    #[serde(default)]
    accuracy: Vec<ClassAccuracy>,
}

#[derive(Serialize, Deserialize)]
struct ClassDocument {
    name: String,
    /// Each example: its views' features, little-endian f16, base64.
    examples: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct HeadDocument {
    kind: String,
    temperature: f32,
    /// Each class's mean direction, little-endian f32, base64.
    means: Vec<String>,
}

fn encode_f16(values: impl Iterator<Item = f32>) -> String {
    let bytes: Vec<u8> = values
        .flat_map(|v| burn::tensor::f16::from_f32(v).to_le_bytes())
        .collect();
    BASE64.encode(bytes)
}

fn encode_f32(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    BASE64.encode(bytes)
}

fn refused(why: impl std::fmt::Display) -> GlimpseError {
    GlimpseError::InvalidArgument(format!(
        "this is not a usable teachable-classes file: {why}"
    ))
}

fn decode_values(text: &str, width: usize, what: &str) -> Result<Vec<f32>> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| refused(format!("{what} is not base64 ({e})")))?;
    let values: Vec<f32> = match width {
        2 => bytes
            .chunks_exact(2)
            .map(|b| burn::tensor::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    };
    if !bytes.len().is_multiple_of(width)
        || values.is_empty()
        || !values.len().is_multiple_of(FEATURES)
    {
        return Err(refused(format!(
            "{what} does not hold whole {FEATURES}-wide feature vectors"
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(refused(format!("{what} holds values that are not finite")));
    }
    Ok(values)
}

impl ClassSet {
    pub fn to_json(&self) -> String {
        let document = Document {
            format: FORMAT.into(),
            version: VERSION,
            backbone: BACKBONE.into(),
            classes: self
                .classes
                .iter()
                .map(|c| ClassDocument {
                    name: c.name.clone(),
                    examples: c
                        .examples
                        .iter()
                        .map(|e| encode_f16(e.views.iter().flatten().copied()))
                        .collect(),
                })
                .collect(),
            head: self.head.as_ref().map(|h| HeadDocument {
                kind: "nearest-class-mean".into(),
                temperature: h.temperature,
                means: h.means.iter().map(|m| encode_f32(m)).collect(),
            }),
            accuracy: self.accuracy.clone(),
        };
        serde_json::to_string(&document).expect("the document serializes")
    }

    pub fn from_json(text: &str) -> Result<Self> {
        if text.len() > MAX_SET_BYTES {
            return Err(refused(format!(
                "it is {:.1} MB; the limit is {} MB",
                text.len() as f64 / 1e6,
                MAX_SET_BYTES / 1_000_000
            )));
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| refused(format!("it is not JSON ({e})")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(refused(format!("its format is '{other}'"))),
            None => return Err(refused(format!("it has no \"format\": \"{FORMAT}\""))),
        }
        // Counted before a single example is decoded.
        let classes = value
            .get("classes")
            .and_then(|c| c.as_array())
            .map_or(0, Vec::len);
        if classes > MAX_CLASSES {
            return Err(refused(format!(
                "it lists {classes} classes; the limit is {MAX_CLASSES}"
            )));
        }
        let document: Document =
            serde_json::from_value(value).map_err(|e| refused(e.to_string()))?;
        if document.version != VERSION {
            return Err(refused(format!(
                "it is version {}, this build reads version {VERSION}",
                document.version
            )));
        }
        if document.backbone != BACKBONE {
            return Err(refused(format!(
                "it was made with '{}', not {BACKBONE}",
                document.backbone
            )));
        }
        let mut classes = Vec::with_capacity(document.classes.len());
        for class in document.classes {
            let examples = class
                .examples
                .iter()
                .map(|text| {
                    let values =
                        decode_values(text, 2, &format!("an example of '{}'", class.name))?;
                    Ok(Example {
                        views: values.chunks(FEATURES).map(<[f32]>::to_vec).collect(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if class.name.trim().is_empty() {
                return Err(refused("a class has no name"));
            }
            classes.push(TaughtClass {
                name: class.name,
                examples,
            });
        }
        let head = match document.head {
            None => None,
            Some(head) => {
                if head.kind != "nearest-class-mean" {
                    return Err(refused(format!("its head is a '{}'", head.kind)));
                }
                if head.means.len() != classes.len() {
                    return Err(refused(format!(
                        "its head has {} classes but the file lists {}",
                        head.means.len(),
                        classes.len()
                    )));
                }
                if !(head.temperature.is_finite() && head.temperature > 0.0) {
                    return Err(refused("its head's temperature is not a positive number"));
                }
                let means = head
                    .means
                    .iter()
                    .map(|m| {
                        let values = decode_values(m, 4, "a class mean")?;
                        if values.len() != FEATURES {
                            return Err(refused("a class mean is not one feature vector"));
                        }
                        Ok(values)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(Head {
                    names: classes.iter().map(|c| c.name.clone()).collect(),
                    means,
                    temperature: head.temperature,
                })
            }
        };
        Ok(Self {
            classes,
            head,
            accuracy: document.accuracy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feature vector pointing mostly along axis `axis`, nudged by `jitter`.
    fn feature(axis: usize, jitter: f32) -> Vec<f32> {
        let mut v = vec![0.01; FEATURES];
        v[axis] = 1.0;
        v[(axis + 7) % FEATURES] += jitter;
        v
    }

    fn two_classes() -> ClassSet {
        let mut set = ClassSet::default();
        for i in 0..4 {
            let j = i as f32 * 0.1;
            set.add("mug", vec![feature(0, j), feature(0, j + 0.05)])
                .unwrap();
            set.add("plant", vec![feature(1, j), feature(1, j + 0.05)])
                .unwrap();
        }
        set
    }

    #[test]
    fn a_trained_head_predicts_the_nearest_class_with_calibrated_probabilities() {
        let mut set = two_classes();
        let head = set.train().unwrap().clone();
        let top = head.predict(&feature(1, 0.2));
        assert_eq!(top[0].label, "plant");
        assert!(top[0].prob > 0.5 && (top[0].prob + top[1].prob - 1.0).abs() < 1e-5);
        assert_eq!(
            set.accuracy,
            [
                ClassAccuracy {
                    name: "mug".into(),
                    correct: 4,
                    total: 4
                },
                ClassAccuracy {
                    name: "plant".into(),
                    correct: 4,
                    total: 4
                },
            ]
        );
    }

    #[test]
    fn training_needs_two_classes_with_examples() {
        let mut set = ClassSet::default();
        assert!(
            set.train()
                .unwrap_err()
                .to_string()
                .contains("at least two classes")
        );
        set.add("mug", vec![feature(0, 0.0)]).unwrap();
        assert!(
            set.train()
                .unwrap_err()
                .to_string()
                .contains("at least two classes")
        );
        set.classes.push(TaughtClass {
            name: "plant".into(),
            examples: vec![],
        });
        assert!(
            set.train()
                .unwrap_err()
                .to_string()
                .contains("'plant' has no examples")
        );
    }

    #[test]
    fn examples_need_names_and_full_feature_vectors() {
        let mut set = ClassSet::default();
        assert!(set.add("  ", vec![feature(0, 0.0)]).is_err());
        assert!(set.add("mug", vec![vec![1.0; 3]]).is_err());
        assert!(set.add("mug", vec![]).is_err());
    }

    #[test]
    fn a_set_survives_its_json_round_trip_with_the_same_predictions() {
        let mut set = two_classes();
        set.train().unwrap();
        let back = ClassSet::from_json(&set.to_json()).unwrap();
        assert_eq!(back.classes.len(), 2);
        assert_eq!(back.accuracy, set.accuracy);
        let query = feature(0, 0.3);
        let (a, b) = (
            set.head.unwrap().predict(&query),
            back.head.unwrap().predict(&query),
        );
        assert_eq!(a[0].label, b[0].label);
        assert!((a[0].prob - b[0].prob).abs() < 1e-6);
    }

    #[test]
    fn a_set_over_the_class_or_size_limit_is_refused_with_the_limit() {
        let mut set = ClassSet::default();
        for i in 0..MAX_CLASSES {
            set.add(&format!("c{i}"), vec![feature(0, 0.0)]).unwrap();
        }
        let error = set.add("one more", vec![feature(0, 0.0)]).unwrap_err();
        assert!(
            error.to_string().contains("at most 1000 classes"),
            "{error}"
        );
        set.add("c7", vec![feature(1, 0.0)]).unwrap();

        let names: Vec<String> = (0..=MAX_CLASSES)
            .map(|i| format!(r#"{{"name": "c{i}", "examples": []}}"#))
            .collect();
        let many = format!(
            r#"{{"format": "{FORMAT}", "version": 1, "backbone": "{BACKBONE}", "classes": [{}]}}"#,
            names.join(",")
        );
        let error = ClassSet::from_json(&many).unwrap_err().to_string();
        assert!(
            error.contains("lists 1001 classes; the limit is 1000"),
            "{error}"
        );

        let huge = " ".repeat(MAX_SET_BYTES + 1);
        let error = ClassSet::from_json(&huge).unwrap_err().to_string();
        assert!(error.contains("50.0 MB; the limit is 50 MB"), "{error}");
    }

    #[test]
    fn foreign_or_damaged_files_are_refused_with_a_reason() {
        let cases = [
            ("not json", "not JSON"),
            (r#"{"hello": 1}"#, "has no \"format\""),
            (r#"{"format": "keras-model"}"#, "format is 'keras-model'"),
            (
                r#"{"format": "glimpse-teachable-classes", "version": 9, "backbone": "efficientnet-lite0", "classes": []}"#,
                "version 9",
            ),
            (
                r#"{"format": "glimpse-teachable-classes", "version": 1, "backbone": "efficientnet-lite0", "classes": [{"name": "a", "examples": ["!!"]}]}"#,
                "not base64",
            ),
            (
                r#"{"format": "glimpse-teachable-classes", "version": 1, "backbone": "efficientnet-lite0", "classes": [{"name": "a", "examples": ["AAAA"]}]}"#,
                "whole 1280-wide",
            ),
        ];
        for (text, reason) in cases {
            let error = ClassSet::from_json(text).unwrap_err().to_string();
            assert!(
                error.contains("not a usable teachable-classes file"),
                "{error}"
            );
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
