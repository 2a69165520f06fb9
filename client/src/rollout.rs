//! Rolling a fleet's change out in waves: which devices each wave holds, and whether a
//! wave passed. Pure.

/// Why a wave specification is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveError {
    #[error("wave {0:?} is not a count like 1 or a share like 25%")]
    Malformed(String),
    #[error("waves must grow: {0:?} is not more than the wave before it")]
    NotGrowing(String),
}

/// The cumulative sizes of the waves for `n` devices from a list like `1,25%,100%`: each
/// wave takes the devices up to its size (a share rounds up, at least one); the last wave
/// always reaches every device. Sizes that add nobody are dropped.
pub fn waves(n: usize, spec: &str) -> Result<Vec<usize>, WaveError> {
    let mut out: Vec<usize> = Vec::new();
    if n == 0 {
        return Ok(out);
    }
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let size = match part.strip_suffix('%') {
            Some(p) => {
                let pct: f64 = p
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f64| *v > 0.0 && *v <= 100.0)
                    .ok_or_else(|| WaveError::Malformed(part.into()))?;
                ((n as f64 * pct / 100.0).ceil() as usize).max(1)
            }
            None => part
                .parse::<usize>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| WaveError::Malformed(part.into()))?,
        }
        .min(n);
        match out.last() {
            Some(&last) if size < last => return Err(WaveError::NotGrowing(part.into())),
            Some(&last) if size == last => {}
            _ => out.push(size),
        }
    }
    if out.last() != Some(&n) {
        out.push(n);
    }
    Ok(out)
}

/// A share like `90%` as a fraction.
pub fn share(text: &str) -> Option<f64> {
    let v: f64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
    (0.0..=100.0).contains(&v).then_some(v / 100.0)
}

/// Whether a wave of `size` devices with `healthy` of them converged passes at `min`.
pub fn passes(healthy: usize, size: usize, min: f64) -> bool {
    size == 0 || healthy as f64 >= (size as f64 * min) - 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_grow_to_every_device() {
        assert_eq!(waves(10, "1,25%,100%").unwrap(), vec![1, 3, 10]);
        assert_eq!(
            waves(10, "1,25%").unwrap(),
            vec![1, 3, 10],
            "the rest at the end"
        );
        assert_eq!(
            waves(2, "1,25%,100%").unwrap(),
            vec![1, 2],
            "a wave adding nobody goes"
        );
        assert_eq!(waves(100, "5%,50%").unwrap(), vec![5, 50, 100]);
        assert_eq!(waves(0, "1,100%").unwrap(), Vec::<usize>::new());
        assert!(matches!(waves(10, "5,2"), Err(WaveError::NotGrowing(_))));
        assert!(matches!(waves(10, "0"), Err(WaveError::Malformed(_))));
        assert!(matches!(waves(10, "150%"), Err(WaveError::Malformed(_))));
        assert!(matches!(waves(10, "a few"), Err(WaveError::Malformed(_))));
    }

    #[test]
    fn a_wave_passes_at_its_share_of_healthy_devices() {
        let min = share("90%").unwrap();
        assert!(passes(9, 10, min));
        assert!(!passes(8, 10, min));
        assert!(!passes(0, 1, min), "a failed canary stops the rollout");
        assert!(passes(1, 1, min));
        assert_eq!(share("ninety"), None);
    }
}
