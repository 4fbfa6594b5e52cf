//! Seeing: EfficientNet-Lite0 ([`efficientnet`], with its CPU kernels in [`kernels`]), the pictures it reads ([`preprocess`]: files
//! and camera frames decoded, resized and cropped), the classifier every surface uses
//! ([`classifier`]: weights in, ranked classes out), the ImageNet class names ([`labels`]),
//! where in a picture each class's evidence lies ([`cam`], drawn by [`overlay`]), the
//! classes a person teaches on top of its features ([`teach`]), the classes' place in
//! WordNet ([`wordnet`]), and rivals in the top-5 rolled up under a shared noun ([`rollup`]).

pub mod cam;
pub mod classifier;
pub mod efficientnet;
pub mod kernels;
pub mod labels;
pub mod overlay;
pub mod preprocess;
pub mod profile;
pub mod resample;
pub mod rollup;
pub mod teach;
pub mod wordnet;

pub use cam::{Tiling, Where};
pub use classifier::{Classifier, Prediction, top_k};
