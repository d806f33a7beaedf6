//! The byte layout shared by the store's log and snapshots: little-endian
//! fixed-width integers, LEB128 varints, length-prefixed UTF-8 strings, and
//! a [`Reader`] that reports truncation and bad UTF-8 as errors instead of
//! panicking, so a damaged file is a message naming it, never a crash.
//!
//! Written here rather than with serde + bincode: the project's bincode
//! (2.0.1) is unmaintained and kept only for the artifact format, and the
//! handful of record shapes the store writes are simpler to read without
//! allocating when their layout is spelled out.

/// Appends values to a buffer.
pub trait Put {
    /// One byte.
    fn put_u8(&mut self, v: u8);
    /// An unsigned varint.
    fn put_varint(&mut self, v: u64);
    /// A signed varint (zigzag).
    fn put_varint_i64(&mut self, v: i64) {
        self.put_varint(((v << 1) ^ (v >> 63)) as u64);
    }
    /// Eight bytes, little-endian.
    fn put_u64(&mut self, v: u64);
    /// An `f64` by its bits.
    fn put_f64(&mut self, v: f64) {
        self.put_u64(v.to_bits());
    }
    /// A length-prefixed string.
    fn put_str(&mut self, s: &str);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_str(&mut self, s: &str) {
        self.put_varint(s.len() as u64);
        self.extend_from_slice(s.as_bytes());
    }
}

/// Why bytes could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a value.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A value is out of its range (a tag, a length, a varint).
    #[error("bad {what} at byte {at}")]
    Bad {
        /// What was being read.
        what: &'static str,
        /// Where.
        at: usize,
    },
}

/// Reads values back from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// Whether every byte was read.
    pub fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.at
    }

    /// An error for a bad value at the current position.
    pub fn bad(&self, what: &'static str) -> DecodeError {
        DecodeError::Bad { what, at: self.at }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(DecodeError::Truncated(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned varint.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.bad("varint"))
    }

    /// A varint that must fit `usize` and be at most `max` (a count read
    /// before allocating from it).
    pub fn count(&mut self, max: usize) -> Result<usize, DecodeError> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|v| *v <= max)
            .ok_or(self.bad("count"))
    }

    /// A signed (zigzag) varint.
    pub fn varint_i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("eight bytes")))
    }

    /// An `f64` by its bits.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// A length-prefixed string.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.count(self.bytes.len())?;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::Bad { what: "UTF-8", at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_and_truncation_is_an_error() {
        let mut buf = Vec::new();
        buf.put_varint(300);
        buf.put_varint_i64(-5);
        buf.put_varint_i64(i64::MIN);
        buf.put_f64(-0.1);
        buf.put_str("héllo");
        let mut r = Reader::new(&buf);
        assert_eq!(r.varint().unwrap(), 300);
        assert_eq!(r.varint_i64().unwrap(), -5);
        assert_eq!(r.varint_i64().unwrap(), i64::MIN);
        assert_eq!(r.f64().unwrap().to_bits(), (-0.1f64).to_bits());
        assert_eq!(r.str().unwrap(), "héllo");
        assert!(r.is_done());
        let mut short = Reader::new(&buf[..buf.len() - 1]);
        short.varint().unwrap();
        short.varint_i64().unwrap();
        short.varint_i64().unwrap();
        short.f64().unwrap();
        assert!(matches!(short.str(), Err(DecodeError::Truncated(_))));
        // A length larger than the data is refused before anything is allocated.
        let mut huge = Vec::new();
        huge.put_varint(u64::MAX >> 1);
        assert!(Reader::new(&huge).count(1000).is_err());
    }
}
