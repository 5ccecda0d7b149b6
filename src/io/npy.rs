//! Writing NPY files (format version 1.0), including a 3-D array that grows frame by frame.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Total header size in bytes. It is fixed so that the shape can be rewritten in place as frames
/// are added; 128 leaves room for three 20-digit dimensions and keeps the data 64-byte aligned.
const HEADER_LEN: usize = 128;

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// Builds the full header (magic, length, dictionary, padding) for a C-order array.
fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let body_len = HEADER_LEN - MAGIC.len() - 2;
    assert!(dict.len() < body_len, "NPY header dictionary is too long");
    while dict.len() < body_len - 1 {
        dict.push(' ');
    }
    dict.push('\n');

    let mut bytes = Vec::with_capacity(HEADER_LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(body_len as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes
}

/// Writes a little-endian float32 array of the given shape in one go.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let mut bytes = header("<f4", shape);
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| Error::output(path, e))
}

/// Writes a little-endian int64 array of the given shape in one go.
pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<()> {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let mut bytes = header("<i8", shape);
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| Error::output(path, e))
}

/// A float32 array of shape `(frames, n, d)` written one frame at a time.
///
/// After each frame the header is rewritten with the new frame count and the file is flushed, so
/// a run killed part way leaves a file that `numpy.load` reads with every finished frame.
pub struct FrameWriter {
    path: PathBuf,
    file: BufWriter<File>,
    n: usize,
    dim: usize,
    frames: usize,
    buffer: Vec<u8>,
}

impl FrameWriter {
    pub fn create(path: &Path, n: usize, dim: usize) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::output(path, e))?;
        let mut writer =
            Self { path: path.to_path_buf(), file: BufWriter::new(file), n, dim, frames: 0, buffer: Vec::new() };
        writer.write_header()?;
        Ok(writer)
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Appends one frame of `n * d` row-major values, stored as float32.
    pub fn push(&mut self, coords: &[f64]) -> Result<()> {
        assert_eq!(coords.len(), self.n * self.dim, "frame must have n * d values");
        self.buffer.clear();
        for &x in coords {
            self.buffer.extend_from_slice(&(x as f32).to_le_bytes());
        }
        let io = |e: std::io::Error| Error::output(&self.path, e);
        self.file.seek(SeekFrom::End(0)).map_err(io)?;
        self.file.write_all(&self.buffer).map_err(io)?;
        self.frames += 1;
        self.write_header()
    }

    fn write_header(&mut self) -> Result<()> {
        let bytes = header("<f4", &[self.frames, self.n, self.dim]);
        let io = |e: std::io::Error| Error::output(&self.path, e);
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.write_all(&bytes).map_err(io)?;
        self.file.flush().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_terminated() {
        let bytes = header("<f4", &[12, 1797, 16]);
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(bytes.len() % 64, 0);
        assert_eq!(*bytes.last().unwrap(), b'\n');
    }

    #[test]
    fn frames_read_back_with_npyz() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions.npy");
        let mut writer = FrameWriter::create(&path, 2, 3).unwrap();
        writer.push(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        writer.push(&[-1.0, -2.0, -3.0, -4.0, -5.0, -6.5]).unwrap();
        drop(writer);

        let bytes = std::fs::read(&path).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), &[2, 2, 3]);
        let values = npy.into_vec::<f32>().unwrap();
        assert_eq!(values[5], 6.0);
        assert_eq!(values[11], -6.5);
    }
}
