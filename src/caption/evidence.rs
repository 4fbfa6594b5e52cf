//! Gathering the facts of a picture: which objects a caption may name, and where they are.
//!
//! The classifier's top classes are rival names for what is in its center crop. A second
//! object is different evidence: a class that is the best guess of another part of the
//! picture, whose map lies apart from the main subject's, and that a second look at that region
//! confirms. So the picture is covered by square views ([`crate::vision::cam`]); each view's
//! best class is a candidate; candidates are located with their class activation maps; and a
//! candidate is kept only when the classifier, shown the region around it, names it again with
//! at least [`CONFIRM`] probability. Two classes whose regions overlap are one object (the
//! better one is kept).

use image::RgbImage;

use super::facts::{Certainty, Facts, Subject};
use crate::error::{GlimpseError, Result};
use crate::runtime::rows;
use crate::vision::cam::{Tiling, Where};
use crate::vision::preprocess::{prepare, prepare_whole, region_around};
use crate::vision::rollup::roll_up;
use crate::vision::{Classifier, Prediction, top_k};

/// A region's second look must name the candidate with at least this probability.
pub const CONFIRM: f32 = 0.5;
/// A view's best class is a candidate from this probability on.
const CANDIDATE: f32 = 0.3;
/// Regions overlapping more than this (intersection over union) hold the same object.
const SAME_OBJECT: f32 = 0.3;
/// At most this many regions are looked at again per picture.
const MAX_SECOND_LOOKS: usize = 3;

/// [`gather_async`], natively: blocks until the device is done.
#[cfg(not(target_arch = "wasm32"))]
pub fn gather(classifier: &Classifier, image: &RgbImage, probs: &[f32]) -> Result<Facts> {
    futures_lite::future::block_on(gather_async(classifier, image, probs))
}

/// Class probabilities of prepared inputs, one row each, read back without blocking (the
/// browser's GPU cannot be read synchronously).
async fn probabilities(classifier: &Classifier, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let probs = classifier.probabilities(classifier.batch(inputs));
    read_rows(probs).await
}

async fn read_rows<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Result<Vec<Vec<f32>>> {
    rows(tensor.into_data_async().await.map_err(read_failed)?)
}

fn read_failed(e: impl std::fmt::Debug) -> GlimpseError {
    GlimpseError::Backend(format!("reading the result from the device failed: {e:?}"))
}

/// The facts of `image`, whose center-crop class probabilities are `probs`: the main subject
/// with its box, and a second object when one is confirmed apart from it. Costs one pass over
/// the views (their probabilities and maps both come from it) and one per second look (at
/// most [`MAX_SECOND_LOOKS`], each a batch of two inputs).
pub async fn gather_async(
    classifier: &Classifier,
    image: &RgbImage,
    probs: &[f32],
) -> Result<Facts> {
    let top = top_k(probs, 2);
    let facts = Facts::from_classification(&top, &roll_up(probs))
        .ok_or_else(|| GlimpseError::InvalidArgument("no classes to describe".into()))?;
    let (width, height) = image.dimensions();
    let tiling = Tiling::new(width, height);
    let views = classifier.feature_map(classifier.batch(&tiling.inputs(image)));
    let (_, view_probs) = classifier.read_out(views.clone());
    let view_probs = read_rows(view_probs).await?;

    // Candidates: the center's best class and each view's, most probable first, each once.
    let mut candidates: Vec<Prediction> = vec![top[0].clone()];
    candidates.extend(
        view_probs
            .iter()
            .map(|p| top_k(p, 1).remove(0))
            .filter(|p| p.prob >= CANDIDATE),
    );
    candidates.sort_by(|a, b| b.prob.total_cmp(&a.prob));
    let mut seen = Vec::new();
    candidates.retain(|c| {
        let new = !seen.contains(&c.index);
        seen.push(c.index);
        new
    });
    let classes: Vec<usize> = candidates.iter().map(|c| c.index).collect();
    let maps = read_rows(classifier.maps_of(views, &classes))
        .await?
        .concat();
    let places = tiling.locate(&maps, &classes);
    let main_place = places
        .iter()
        .find(|p| p.index == top[0].index)
        .expect("the center's best class is a candidate");
    if candidates.len() == 1 {
        return Ok(with_box(facts, main_place));
    }

    // Second looks: each candidate's region, unless an object already confirmed holds it.
    let mut confirmed: Vec<(Subject, [f32; 4])> = Vec::new();
    // The center's best class joined the candidates for its box; below CANDIDATE it is no
    // evidence of an object of its own.
    let looked_at = candidates
        .iter()
        .zip(&places)
        .filter(|(c, _)| c.prob >= CANDIDATE)
        .take(MAX_SECOND_LOOKS);
    for (candidate, place) in looked_at {
        let bbox = place.bbox.map(|v| v as f32);
        if confirmed.iter().any(|(_, b)| iou(*b, bbox) > SAME_OBJECT) {
            continue;
        }
        // The region is seen twice in one batch, center-cropped and whole: neither is
        // always better (a wide region's crop cuts into a long object; its whole view
        // squeezes a round one), and the region is confirmed by the better look.
        let region = region_around(image, place.bbox);
        let looks = probabilities(classifier, &[prepare(&region), prepare_whole(&region)]).await?;
        let best = looks
            .iter()
            .filter_map(|probs| confirm(candidate, probs))
            .max_by(|a, b| a.prob.total_cmp(&b.prob));
        if let Some(mut subject) = best {
            subject.bbox = Some(bbox);
            confirmed.push((subject, bbox));
        }
    }
    // The two strongest candidates confirmed, described in reading order (left to right).
    confirmed.truncate(2);
    confirmed.sort_by(|(_, a), (_, b)| (a[0] + a[2]).total_cmp(&(b[0] + b[2])));
    let mut objects = confirmed.into_iter().map(|(s, _)| s);
    Ok(match (objects.next(), objects.next()) {
        (Some(main), Some(second)) => Facts::sure(main).with_second(second),
        // One object, seen surely in its own region while the center crop was unsure of it
        // (it lies off center): the region's look is the better evidence.
        (Some(only), None)
            if facts.certainty != Certainty::Sure && only.prob > facts.main().prob =>
        {
            Facts::sure(only)
        }
        _ => with_box(facts, main_place),
    })
}

/// What a second look at a candidate's region confirms: the candidate's class when the region's
/// best class is it with at least [`CONFIRM`], or else the noun its rivals there share when that
/// noun holds the candidate and is that probable (a half-seen eagle: "bird").
fn confirm(candidate: &Prediction, region_probs: &[f32]) -> Option<Subject> {
    let best = top_k(region_probs, 1).remove(0);
    if best.index == candidate.index && best.prob >= CONFIRM {
        return Some(Subject::from_prediction(&best));
    }
    roll_up(region_probs)
        .into_iter()
        .find(|g| g.prob >= CONFIRM && g.members.iter().any(|m| m.index == candidate.index))
        .map(|g| Subject {
            index: candidate.index,
            label: g.noun,
            prob: g.prob,
            bbox: None,
            position: None,
            synset: Some(g.synset),
        })
}

fn with_box(mut facts: Facts, place: &Where) -> Facts {
    if facts.objects[0].index == place.index {
        facts.objects[0].bbox = Some(place.bbox.map(|v| v as f32));
    }
    facts
}

/// Intersection over union of two boxes `[x0, y0, x1, y1]`.
fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_measured_as_intersection_over_union() {
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]), 1.0);
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0]), 0.0);
        assert!((iou([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
