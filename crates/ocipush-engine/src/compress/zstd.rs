//! zstd for `--compression zstd`, multithreaded inside libzstd. Its multithreaded output is the
//! same for any worker count of one or more, so the digest does not depend on the machine; the
//! worker count is at least one for exactly that reason (zero workers is a different format
//! path with different output).

use std::io::{self, Read, Write};

/// Compresses `input` into `out` as one zstd frame.
pub(crate) fn zstd_compress(
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
) -> io::Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    zstd_with_workers(input, out, level, workers.max(1))
}

fn zstd_with_workers(
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
    workers: u32,
) -> io::Result<()> {
    let mut encoder = zstd::stream::write::Encoder::new(out, level as i32)?;
    encoder.multithread(workers)?;
    encoder.include_checksum(false)?;
    io::copy(input, &mut encoder)?;
    encoder.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_output_for_any_worker_count_and_round_trips() {
        let data: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| ((i / 7) % 253).to_le_bytes())
            .collect();
        let run = |workers| {
            let mut out = Vec::new();
            zstd_with_workers(&mut &data[..], &mut out, 3, workers).unwrap();
            out
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
        assert!(one.len() < data.len() / 4);
        assert_eq!(zstd::stream::decode_all(&one[..]).unwrap(), data);
    }
}
