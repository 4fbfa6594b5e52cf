//! GGUF (versions 2 and 3): the container llama.cpp and friends use for quantized language
//! models. Parsing reads only the header, metadata and tensor table; tensor data stays where
//! it is in the caller's buffer and is addressed by [`TensorInfo::data_range`], so a browser
//! holding the downloaded bytes never needs a second copy.
//!
//! Every count, length and offset is checked against the bytes actually present before
//! anything is allocated, so a corrupt or hostile file gets an error, not a huge allocation.

use std::collections::BTreeMap;
use std::fmt;

/// "GGUF" read as a little-endian u32.
const MAGIC: u32 = 0x4655_4747;
const DEFAULT_ALIGNMENT: u64 = 32;
/// GGML supports at most 4 dimensions.
const MAX_DIMS: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufError(pub String);

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GGUF: {}", self.0)
    }
}

impl std::error::Error for GgufError {}

pub(crate) fn err<T>(message: impl Into<String>) -> Result<T, GgufError> {
    Err(GgufError(message.into()))
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// Any integer type that fits in a u64.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => self.as_u64().map(|v| v as f32),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// The GGML tensor types this crate knows the layout of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
}

impl GgmlType {
    fn from_id(id: u32) -> Result<Self, GgufError> {
        Ok(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::BF16,
            other => return err(format!("unsupported tensor type id {other}")),
        })
    }

    /// (elements per block, bytes per block).
    pub fn block(self) -> (u64, u64) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q2K => (256, 84),
            Self::Q3K => (256, 110),
            Self::Q4K => (256, 144),
            Self::Q5K => (256, 176),
            Self::Q6K => (256, 210),
        }
    }

    /// Storage cost per weight, including the block scales.
    pub fn bits_per_weight(self) -> f64 {
        let (elements, bytes) = self.block();
        bytes as f64 * 8.0 / elements as f64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// GGML order: the first dimension is the contiguous one (columns of a row-major matrix).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Saturates rather than wraps: [`Gguf::parse`] refuses tensors whose size does not fit
    /// in a u64, and a saturated length cannot pass a bounds check by accident.
    pub fn byte_len(&self) -> u64 {
        let (per_block, bytes) = self.ggml_type.block();
        (self.elements() / per_block).saturating_mul(bytes)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute file offset where tensor data begins.
    pub data_offset: u64,
}

impl Gguf {
    /// Parses the header, metadata and tensor table of a complete GGUF file and checks that
    /// every tensor lies inside it.
    pub fn parse(bytes: &[u8]) -> Result<Self, GgufError> {
        let gguf = Self::parse_header(bytes)?;
        for tensor in &gguf.tensors {
            let range = gguf.data_range(tensor)?;
            if range.end > bytes.len() as u64 {
                return err(format!(
                    "tensor `{}` ends at byte {} but the file has only {} bytes (truncated?)",
                    tensor.name,
                    range.end,
                    bytes.len()
                ));
            }
        }
        Ok(gguf)
    }

    /// Parses only the header, metadata and tensor table, from a prefix of the file (for
    /// streaming: tensor bounds are not checked against the file's length).
    pub fn parse_header(bytes: &[u8]) -> Result<Self, GgufError> {
        let mut r = Reader { bytes, at: 0 };
        if r.u32()? != MAGIC {
            return err("not a GGUF file (wrong magic number)");
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return err(format!(
                "unsupported GGUF version {version} (2 and 3 are supported)"
            ));
        }
        let tensor_count = r.count("tensors", 8 + 4 + 4 + 8)?;
        let kv_count = r.count("metadata entries", 8 + 4 + 1)?;

        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = r.string()?;
            let value = r.value(0)?;
            metadata.insert(key, value);
        }

        let mut tensors = Vec::with_capacity(tensor_count as usize);
        for _ in 0..tensor_count {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return err(format!(
                    "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"
                ));
            }
            let dims = (0..n_dims)
                .map(|_| r.u64())
                .collect::<Result<Vec<_>, _>>()?;
            let elements = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| {
                    GgufError(format!("tensor `{name}` has an impossible size {dims:?}"))
                })?;
            let ggml_type = GgmlType::from_id(r.u32()?)
                .map_err(|e| GgufError(format!("tensor `{name}`: {}", e.0)))?;
            let (per_block, block_bytes) = ggml_type.block();
            if elements % per_block != 0 || dims[0] % per_block != 0 {
                return err(format!(
                    "tensor `{name}` {dims:?} is not a whole number of {ggml_type:?} blocks"
                ));
            }
            if (elements / per_block).checked_mul(block_bytes).is_none() {
                return err(format!("tensor `{name}` has an impossible size {dims:?}"));
            }
            let offset = r.u64()?;
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
            });
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => return err(format!("general.alignment {v:?} is not a power of two")),
            },
        };
        let data_offset = (r.at as u64).div_ceil(alignment) * alignment;
        for tensor in &tensors {
            if tensor.offset % alignment != 0 {
                return err(format!(
                    "tensor `{}` is not aligned to {alignment} bytes",
                    tensor.name
                ));
            }
        }
        Ok(Gguf {
            version,
            metadata,
            tensors,
            data_offset,
        })
    }

    /// Absolute byte range of a tensor's data in the file.
    pub fn data_range(&self, tensor: &TensorInfo) -> Result<std::ops::Range<u64>, GgufError> {
        let start = self.data_offset.checked_add(tensor.offset);
        let end = start.and_then(|s| s.checked_add(tensor.byte_len()));
        match (start, end) {
            (Some(start), Some(end)) => Ok(start..end),
            _ => err(format!(
                "tensor `{}` has an offset past any possible file",
                tensor.name
            )),
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// `general.architecture`, e.g. `llama`.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }
}

/// Bounds-checked little-endian reads.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Arrays nest in principle; real files use one level. Deeper nesting is refused.
const MAX_ARRAY_NESTING: usize = 2;

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], GgufError> {
        if n > self.remaining() {
            return err(format!(
                "the file ends early (needed {n} more bytes at offset {})",
                self.at
            ));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        self.array().map(u64::from_le_bytes)
    }

    /// A count of items each needing at least `min_bytes`: more than the rest of the file
    /// could hold is refused before anything is allocated for them.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<u64, GgufError> {
        let n = self.u64()?;
        if n > (self.remaining() / min_bytes) as u64 {
            return err(format!(
                "the file claims {n} {what}, more than its size allows"
            ));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > self.remaining() as u64 {
            return err(format!(
                "a string of {len} bytes runs past the end of the file"
            ));
        }
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| GgufError("a string is not valid UTF-8".into()))
    }

    fn value(&mut self, depth: usize) -> Result<Value, GgufError> {
        let kind = self.u32()?;
        self.value_of(kind, depth)
    }

    fn value_of(&mut self, kind: u32, depth: usize) -> Result<Value, GgufError> {
        Ok(match kind {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(self.array::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return err(format!("a boolean holds {b}")),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_NESTING {
                    return err("arrays are nested too deeply");
                }
                let item = self.u32()?;
                let min_bytes = match item {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => return err(format!("unknown metadata value type {other}")),
                };
                let n = self.count("array items", min_bytes)?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value_of(item, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return err(format!("unknown metadata value type {other}")),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::caption::blocks::dequantize;

    /// Writes a GGUF v3 file: metadata entries, then tensors of the given type and data.
    pub(crate) struct Builder {
        kv: Vec<u8>,
        kv_count: u64,
        tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    }

    impl Builder {
        pub fn new() -> Self {
            Self {
                kv: Vec::new(),
                kv_count: 0,
                tensors: Vec::new(),
            }
        }

        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        }

        pub fn string_kv(mut self, key: &str, value: &str) -> Self {
            Self::string(&mut self.kv, key);
            self.kv.extend(8u32.to_le_bytes());
            Self::string(&mut self.kv, value);
            self.kv_count += 1;
            self
        }

        pub fn u32_kv(mut self, key: &str, value: u32) -> Self {
            Self::string(&mut self.kv, key);
            self.kv.extend(4u32.to_le_bytes());
            self.kv.extend(value.to_le_bytes());
            self.kv_count += 1;
            self
        }

        pub fn string_array_kv(mut self, key: &str, values: &[&str]) -> Self {
            Self::string(&mut self.kv, key);
            self.kv.extend(9u32.to_le_bytes());
            self.kv.extend(8u32.to_le_bytes());
            self.kv.extend((values.len() as u64).to_le_bytes());
            values.iter().for_each(|v| Self::string(&mut self.kv, v));
            self.kv_count += 1;
            self
        }

        pub fn tensor(mut self, name: &str, dims: &[u64], ggml_type: u32, data: Vec<u8>) -> Self {
            self.tensors
                .push((name.into(), dims.to_vec(), ggml_type, data));
            self
        }

        pub fn build(self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend(MAGIC.to_le_bytes());
            out.extend(3u32.to_le_bytes());
            out.extend((self.tensors.len() as u64).to_le_bytes());
            out.extend(self.kv_count.to_le_bytes());
            out.extend(&self.kv);
            let mut offset;
            let mut data = Vec::new();
            for (name, dims, ggml_type, bytes) in &self.tensors {
                data.resize(data.len().div_ceil(32) * 32, 0);
                offset = data.len() as u64;
                Self::string(&mut out, name);
                out.extend((dims.len() as u32).to_le_bytes());
                dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
                out.extend(ggml_type.to_le_bytes());
                out.extend(offset.to_le_bytes());
                data.extend(bytes);
            }
            out.resize(out.len().div_ceil(32) * 32, 0);
            out.extend(data);
            out
        }
    }

    fn q8_block(d: u16, values: [i8; 32]) -> Vec<u8> {
        let mut b = d.to_le_bytes().to_vec();
        b.extend(values.iter().map(|&v| v as u8));
        b
    }

    fn small_file() -> Vec<u8> {
        let values: [i8; 32] = std::array::from_fn(|i| i as i8 - 16);
        Builder::new()
            .string_kv("general.architecture", "llama")
            .u32_kv("llama.block_count", 2)
            .tensor(
                "w",
                &[32, 2],
                8,
                [q8_block(0x3800, values), q8_block(0x3C00, values)].concat(),
            )
            .tensor(
                "norm",
                &[4],
                0,
                [1.0f32, 2.0, 3.0, 4.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            )
            .build()
    }

    #[test]
    fn reads_metadata_and_tensor_table() {
        let bytes = small_file();
        let gguf = Gguf::parse(&bytes).unwrap();
        assert_eq!(gguf.version, 3);
        assert_eq!(gguf.architecture(), Some("llama"));
        assert_eq!(
            gguf.get("llama.block_count").and_then(Value::as_u64),
            Some(2)
        );
        let w = gguf.tensor("w").unwrap();
        assert_eq!(
            (w.ggml_type, w.elements(), w.byte_len()),
            (GgmlType::Q8_0, 64, 68)
        );
        let range = gguf.data_range(gguf.tensor("norm").unwrap()).unwrap();
        let norm = dequantize(
            GgmlType::F32,
            &bytes[range.start as usize..range.end as usize],
        )
        .unwrap();
        assert_eq!(norm, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn q8_0_blocks_scale_each_value() {
        let bytes = small_file();
        let gguf = Gguf::parse(&bytes).unwrap();
        let range = gguf.data_range(gguf.tensor("w").unwrap()).unwrap();
        let w = dequantize(
            GgmlType::Q8_0,
            &bytes[range.start as usize..range.end as usize],
        )
        .unwrap();
        assert_eq!(w[0], -16.0 * 0.5);
        assert_eq!(w[32 + 31], 15.0);
    }

    #[test]
    fn a_wrong_magic_is_refused() {
        let mut bytes = small_file();
        bytes[0] = b'X';
        assert!(Gguf::parse(&bytes).unwrap_err().0.contains("wrong magic"));
    }

    #[test]
    fn a_truncated_file_names_the_tensor_that_does_not_fit() {
        let bytes = small_file();
        let err = Gguf::parse(&bytes[..bytes.len() - 8]).unwrap_err();
        assert!(err.0.contains("tensor `norm` ends at byte"), "{err}");
        let err = Gguf::parse(&bytes[..20]).unwrap_err();
        assert!(
            err.0.contains("more than its size allows") || err.0.contains("ends early"),
            "{err}"
        );
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        let mut bytes = small_file();
        bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // metadata count
        let err = Gguf::parse(&bytes).unwrap_err();
        assert!(
            err.0
                .contains("claims 18446744073709551615 metadata entries"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_tensor_type_is_named() {
        let bytes = Builder::new().tensor("odd", &[32], 99, vec![0; 32]).build();
        let err = Gguf::parse(&bytes).unwrap_err();
        assert!(
            err.0
                .contains("tensor `odd`: unsupported tensor type id 99"),
            "{err}"
        );
    }

    #[test]
    fn a_tensor_whose_byte_length_overflows_is_refused() {
        // Found by the `gguf` fuzz target: 2^62 f32 values are 2^64 bytes, which wrapped to 0.
        let bytes = Builder::new()
            .tensor("huge", &[1 << 31, 1 << 31], 0, vec![])
            .build();
        let err = Gguf::parse(&bytes).unwrap_err();
        assert!(
            err.0.contains("tensor `huge` has an impossible size"),
            "{err}"
        );
    }

    #[test]
    fn an_offset_past_the_end_is_refused() {
        let mut bytes = small_file();
        // The `norm` entry: name, dimension count, one dimension, type, then the offset.
        let tensor_table_end = bytes.windows(4).position(|w| w == b"norm").unwrap() + 4 + 4 + 8 + 4;
        bytes[tensor_table_end..tensor_table_end + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let err = Gguf::parse(&bytes).unwrap_err();
        assert!(err.0.contains("tensor `norm` ends at byte"), "{err}");
    }
}
