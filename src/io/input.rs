//! Loading point sets and labels from NPY and CSV files, with every check that turns a bad file
//! into a one-line error naming the file, the problem and the fix.

use std::io::Read;
use std::path::{Path, PathBuf};

use npyz::{DType, NpyFile, Order, TypeChar};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::Points;

/// A point set read from a file, with its labels when the file has them.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub points: Points,
    /// One integer label per row, from a CSV `label` column or a separate labels file.
    pub labels: Option<Vec<i64>>,
    pub path: PathBuf,
    /// Hex SHA-256 of the file's bytes, so a run records exactly which input it used.
    pub sha256: String,
}

/// Column name that marks labels in a CSV header (compared without case).
pub const LABEL_COLUMN: &str = "label";

/// Loads an `(n, d)` point set from an `.npy` or `.csv` file and checks it.
pub fn load_points(path: &Path) -> Result<Dataset> {
    let bytes = read_file(path)?;
    let (points, labels) = match extension(path).as_deref() {
        Some("npy") => (parse_npy_points(path, &bytes)?, None),
        Some("csv") => parse_csv_points(path, &bytes)?,
        other => {
            let found = other.map(|e| format!("'.{e}'")).unwrap_or_else(|| "no extension".into());
            return Err(Error::input(path, format!("unknown file type ({found}); use a .npy or .csv file")));
        }
    };
    check_points(path, &points)?;
    Ok(Dataset { points, labels, path: path.to_path_buf(), sha256: sha256_hex(&bytes) })
}

/// Loads one integer label per row from an `.npy` (1-D, integer or integral float) or a
/// one-column `.csv` file, and checks that there are `n` of them.
pub fn load_labels(path: &Path, n: usize) -> Result<Vec<i64>> {
    let bytes = read_file(path)?;
    let labels = match extension(path).as_deref() {
        Some("npy") => parse_npy_labels(path, &bytes)?,
        Some("csv") => {
            let (points, labels) = parse_csv_points(path, &bytes)?;
            match labels {
                Some(labels) => labels,
                None if points.dim() == 1 => whole_labels(path, points.as_slice())?,
                None => return Err(Error::input(path, "has no 'label' column; give a one-column CSV or a header with 'label'")),
            }
        }
        _ => return Err(Error::input(path, "unknown labels file type; use a .npy or .csv file")),
    };
    if labels.len() != n {
        return Err(Error::input(
            path,
            format!("has {} labels but the point set has {n} rows; give one label per row", labels.len()),
        ));
    }
    Ok(labels)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(path, "file not found; check the path"),
        _ => Error::input(path, format!("cannot open: {e}")),
    })?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::input(path, "is a directory; give a .npy or .csv file"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    if bytes.is_empty() {
        return Err(Error::input(path, "file is empty; expected an (n, d) array of coordinates"));
    }
    Ok(bytes)
}

fn extension(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_lowercase())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn open_npy<'a>(path: &Path, bytes: &'a [u8]) -> Result<NpyFile<&'a [u8]>> {
    NpyFile::new(bytes).map_err(|e| Error::input(path, format!("not a valid NPY file ({e}); save it with numpy.save")))
}

fn parse_npy_points(path: &Path, bytes: &[u8]) -> Result<Points> {
    let npy = open_npy(path, bytes)?;
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        return Err(Error::input(
            path,
            if shape.len() == 3 {
                format!(
                    "array is 3-D with shape {shape:?}; expected a 2-D (n, d) array, one row per particle (for a run's positions.npy, save one frame: numpy.save('frame.npy', numpy.load(path)[-1]))"
                )
            } else {
                format!("array is {}-D with shape {shape:?}; expected a 2-D (n, d) array, one row per particle", shape.len())
            },
        ));
    }
    let (n, dim) = (shape[0] as usize, shape[1] as usize);
    let order = npy.order();
    let DType::Plain(type_str) = npy.dtype() else {
        return Err(Error::input(path, "has a structured dtype; save a plain float32 or float64 array"));
    };
    let values: Vec<f64> = match (type_str.type_char(), type_str.size_field()) {
        (TypeChar::Float, 4) => read_npy::<f32>(path, npy)?.into_iter().map(f64::from).collect(),
        (TypeChar::Float, 8) => read_npy::<f64>(path, npy)?,
        _ => {
            return Err(Error::input(
                path,
                format!("has dtype {type_str}; convert it with .astype('float32') or .astype('float64')"),
            ));
        }
    };

    let coords = match order {
        Order::C => values,
        // Fortran order stores column after column; transpose to row-major.
        Order::Fortran => {
            let mut coords = vec![0.0; n * dim];
            for k in 0..dim {
                for i in 0..n {
                    coords[i * dim + k] = values[k * n + i];
                }
            }
            coords
        }
    };
    Ok(Points::from_rows(n, dim, coords))
}

fn read_npy<T: npyz::Deserialize>(path: &Path, npy: NpyFile<&[u8]>) -> Result<Vec<T>> {
    npy.into_vec::<T>()
        .map_err(|e| Error::input(path, format!("cannot read the array data ({e}); the file may be truncated")))
}

fn parse_npy_labels(path: &Path, bytes: &[u8]) -> Result<Vec<i64>> {
    let npy = open_npy(path, bytes)?;
    let shape = npy.shape().to_vec();
    if shape.len() != 1 {
        return Err(Error::input(path, format!("labels array has shape {shape:?}; expected a 1-D array")));
    }
    let DType::Plain(type_str) = npy.dtype() else {
        return Err(Error::input(path, "labels have a structured dtype; save a plain integer array"));
    };
    let labels = match (type_str.type_char(), type_str.size_field()) {
        (TypeChar::Int, 8) => read_npy::<i64>(path, npy)?,
        (TypeChar::Int, 4) => read_npy::<i32>(path, npy)?.into_iter().map(i64::from).collect(),
        (TypeChar::Int, 2) => read_npy::<i16>(path, npy)?.into_iter().map(i64::from).collect(),
        (TypeChar::Int, 1) => read_npy::<i8>(path, npy)?.into_iter().map(i64::from).collect(),
        (TypeChar::Uint, 1) => read_npy::<u8>(path, npy)?.into_iter().map(i64::from).collect(),
        (TypeChar::Uint, 4) => read_npy::<u32>(path, npy)?.into_iter().map(i64::from).collect(),
        (TypeChar::Float, 8) => whole_labels(path, &read_npy::<f64>(path, npy)?)?,
        _ => return Err(Error::input(path, format!("labels have dtype {type_str}; save them as integers"))),
    };
    Ok(labels)
}

/// Converts labels stored as floats to integers, rejecting any with a fractional part.
fn whole_labels(path: &Path, values: &[f64]) -> Result<Vec<i64>> {
    values
        .iter()
        .enumerate()
        .map(|(row, &value)| {
            if value.is_finite() && value.fract() == 0.0 {
                Ok(value as i64)
            } else {
                Err(Error::input(path, format!("label {value} of row {} is not an integer; give whole-number labels", row + 1)))
            }
        })
        .collect()
}

/// Parses a CSV of numeric columns. A first row with any non-numeric cell is a header, and a
/// header column named `label` holds integer labels instead of coordinates.
fn parse_csv_points(path: &Path, bytes: &[u8]) -> Result<(Points, Option<Vec<i64>>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);

    let mut records = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::input(path, format!("line {}: cannot parse CSV ({e})", index + 1)))?;
        if record.iter().all(|cell| cell.is_empty()) {
            continue;
        }
        records.push(record);
    }
    let Some(first) = records.first() else {
        return Err(Error::input(path, "has no rows; expected an (n, d) table of numbers"));
    };

    let has_header = first.iter().any(|cell| cell.parse::<f64>().is_err());
    let label_column = if has_header {
        first.iter().position(|cell| cell.eq_ignore_ascii_case(LABEL_COLUMN))
    } else {
        None
    };
    let width = first.len();
    let data_rows = if has_header { &records[1..] } else { &records[..] };
    if data_rows.is_empty() {
        return Err(Error::input(path, "has a header but no data rows"));
    }

    let dim = width - usize::from(label_column.is_some());
    let mut coords = Vec::with_capacity(data_rows.len() * dim);
    let mut labels = Vec::new();
    let line_offset = if has_header { 2 } else { 1 };
    for (row_index, record) in data_rows.iter().enumerate() {
        let line = row_index + line_offset;
        if record.len() != width {
            return Err(Error::input(
                path,
                format!("line {line} has {} fields but the first row has {width}; every row needs the same columns", record.len()),
            ));
        }
        for (column, cell) in record.iter().enumerate() {
            let value: f64 = cell.parse().map_err(|_| {
                Error::input(path, format!("line {line}, column {}: '{cell}' is not a number; fix or remove that cell", column + 1))
            })?;
            if Some(column) == label_column {
                if value.fract() != 0.0 || !value.is_finite() {
                    return Err(Error::input(path, format!("line {line}: label '{cell}' is not an integer")));
                }
                labels.push(value as i64);
            } else {
                coords.push(value);
            }
        }
    }
    let n = data_rows.len();
    let labels = label_column.map(|_| labels);
    Ok((Points::from_rows(n, dim, coords), labels))
}

/// Checks the shape and the values of a loaded point set.
fn check_points(path: &Path, points: &Points) -> Result<()> {
    if points.dim() < 1 {
        return Err(Error::input(path, "has 0 coordinate columns; expected d >= 1 columns"));
    }
    if points.n() < 2 {
        return Err(Error::input(
            path,
            format!("has {} row(s); the eccentric term needs at least 2 particles", points.n()),
        ));
    }
    if let Some(index) = points.as_slice().iter().position(|x| !x.is_finite()) {
        let (row, column) = (index / points.dim(), index % points.dim());
        let value = points.as_slice()[index];
        return Err(Error::input(
            path,
            format!("row {}, column {} is {value}; replace or remove non-finite values", row + 1, column + 1),
        ));
    }
    Ok(())
}
