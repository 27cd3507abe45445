//! Resident-set probes for the `parked` workload (in-process, `/proc/self/statm`).

/// The process's resident set size in bytes, from `/proc/self/statm` (field 2 × page size).
pub fn rss_bytes() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| format!("cannot read /proc/self/statm: {e}"))?;
    let pages = parse_statm_resident(&s).ok_or("malformed /proc/self/statm")?;
    Ok(pages * page_size())
}

/// Field 2 (resident pages) of a `statm` line.
pub fn parse_statm_resident(s: &str) -> Option<u64> {
    s.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The system page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_field_two() {
        assert_eq!(parse_statm_resident("100 42 7 1 0 50 0\n"), Some(42));
        assert_eq!(parse_statm_resident("100"), None);
        assert_eq!(parse_statm_resident("a b c"), None);
    }

    #[test]
    fn rss_grows_when_pages_are_touched() {
        let before = rss_bytes().unwrap();
        let v = vec![1u8; 16 << 20];
        let after = rss_bytes().unwrap();
        assert!(std::hint::black_box(&v)[12345] == 1);
        assert!(after > before, "rss {before} -> {after}");
    }
}
