//! The head as plain dense layers in Rust: forward pass, softmax cross-entropy and its
//! gradient. Small enough (tens of thousands of weights) that hand-written loops are the
//! simplest correct thing; no linear-algebra crate needed.

use super::layout::{read_f32s, write_f32s, Activation, Layout};

/// One Dense layer, kernel row-major `[out][in]` as in the `.tflite`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub relu: bool,
}

impl Dense {
    /// `x` holds rows of `inputs` values; writes rows of `outputs` values to `y`.
    pub fn forward(&self, x: &[f32], y: &mut Vec<f32>) {
        let rows = x.len() / self.inputs;
        y.clear();
        y.resize(rows * self.outputs, 0.0);
        for (xr, yr) in x
            .chunks_exact(self.inputs)
            .zip(y.chunks_exact_mut(self.outputs))
        {
            for ((yo, wo), bo) in yr
                .iter_mut()
                .zip(self.w.chunks_exact(self.inputs))
                .zip(&self.b)
            {
                let s = bo + dot(wo, xr);
                *yo = if self.relu { s.max(0.0) } else { s };
            }
        }
    }
}

/// `a · b` over their common length, summed in [`LANES`] interleaved partial sums, then those
/// in order, then the tail.
///
/// Why: a single running sum is one long chain of dependent additions, which the compiler
/// may not reorder (float addition is not associative), so it can use neither vector
/// instructions nor more than one adder; with independent lanes it uses both (SSE on x86-64,
/// NEON on the Pi). Every forward pass here (training, held-out takes, the calibration
/// stream) goes through this one function, and Rust never fuses or reassociates float
/// operations unless asked, so the summation order is fixed by this code, not by the CPU or
/// the build. (A trained head is still only reproducible on the same kind of machine: the
/// embeddings come from LiteRT's CPU kernels and `exp`/`ln` from the platform's libm.)
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Partial sums in [`dot`]: 8 f32 fill two SSE or NEON registers (one AVX register).
const LANES: usize = 8;

/// What one example's output should be: its class, or a distribution over the classes (a
/// soft target, e.g. mixed with what the shipped head says about it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target<'a> {
    Label(usize),
    Soft(&'a [f32]),
}

#[cfg(test)]
impl Dense {
    /// A layer of normal weights x 0.5 and normal biases x `bias_scale` (none drawn when 0),
    /// for tests.
    pub(crate) fn random(
        rng: &mut crate::adapt::trainer::SplitMix64,
        inputs: usize,
        outputs: usize,
        relu: bool,
        bias_scale: f32,
    ) -> Dense {
        let w = (0..inputs * outputs).map(|_| rng.normal() * 0.5).collect();
        let b = if bias_scale == 0.0 {
            vec![0.0; outputs]
        } else {
            (0..outputs).map(|_| rng.normal() * bias_scale).collect()
        };
        Dense {
            inputs,
            outputs,
            w,
            b,
            relu,
        }
    }
}

/// The head: Dense layers, then a softmax.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    pub layers: Vec<Dense>,
}

/// Per-layer gradients, same shapes as the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    pub w: Vec<Vec<f32>>,
    pub b: Vec<Vec<f32>>,
}

/// What an owner model computes, in Rust: its adapted head, joined (when its contract has a
/// `[combine]` table) with the shipped head by the runtime's own rule (`crate::kws::head`).
/// Accuracy, the threshold and the self-check are all taken on this, so they measure what
/// the toy will run.
#[derive(Clone, Copy, Debug)]
pub struct OwnerHead<'a> {
    pub adapted: &'a Net,
    /// The shipped head beside the adapted one, and how their answers are joined.
    pub beside: Option<Beside<'a>>,
}

/// The shipped head kept beside an owner's adapted head, by `[combine]` rule.
#[derive(Clone, Copy, Debug)]
pub enum Beside<'a> {
    /// `rule = "max"`: class by class the larger probability, at one detector threshold.
    Max(&'a Net),
    /// `rule = "either"`: the shipped head at the detector threshold, the adapted one at its
    /// own ([`crate::kws::head::Either`]).
    Either(&'a Net, &'a crate::kws::head::Either),
}

impl<'a> Beside<'a> {
    /// The shipped head.
    pub fn shipped(&self) -> &'a Net {
        match *self {
            Beside::Max(n) | Beside::Either(n, _) => n,
        }
    }

    /// What the owner contract's `[combine]` table says for this.
    pub fn keep(&self) -> super::owner::KeepShipped {
        match self {
            Beside::Max(_) => super::owner::KeepShipped::Max,
            Beside::Either(_, e) => super::owner::KeepShipped::Either {
                own_thresholds: e.own_thresholds.clone(),
            },
        }
    }

    /// Joins the adapted head's probabilities `adapted` with the shipped head's, in place.
    pub fn join_into(&self, adapted: &mut [f32], shipped: &[f32]) {
        match self {
            Beside::Max(_) => crate::kws::head::max_into(adapted, shipped),
            Beside::Either(_, e) => e.join_into(adapted, shipped),
        }
    }
}

impl<'a> OwnerHead<'a> {
    /// The adapted head alone.
    pub fn alone(adapted: &'a Net) -> Self {
        OwnerHead {
            adapted,
            beside: None,
        }
    }

    /// Class scores for one input.
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let mut p = self.adapted.predict(x);
        if let Some(b) = &self.beside {
            b.join_into(&mut p, &b.shipped().predict(x));
        }
        p
    }
}

impl Net {
    /// The weights `layout` locates in the head's bytes.
    pub fn from_tflite(head: &[u8], layout: &Layout) -> Net {
        Net {
            layers: layout
                .layers
                .iter()
                .map(|l| Dense {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    w: read_f32s(head, l.weight_offset, l.inputs * l.outputs),
                    b: read_f32s(head, l.bias_offset, l.outputs),
                    relu: l.activation == Activation::Relu,
                })
                .collect(),
        }
    }

    /// The head's bytes with this net's weights written where `layout` says.
    pub fn patch_tflite(&self, head: &[u8], layout: &Layout) -> Vec<u8> {
        let mut out = head.to_vec();
        for (d, l) in self.layers.iter().zip(&layout.layers) {
            write_f32s(&mut out, l.weight_offset, &d.w);
            write_f32s(&mut out, l.bias_offset, &d.b);
        }
        out
    }

    /// Activations of layers `from..` for `x` (the input of layer `from`): `acts[0] = x`,
    /// `acts[k]` = output of layer `from + k - 1`; the last is the logits.
    pub fn forward_from(&self, from: usize, x: &[f32], acts: &mut Vec<Vec<f32>>) {
        acts.resize(self.layers.len() - from + 1, Vec::new());
        acts[0].clear();
        acts[0].extend_from_slice(x);
        for (k, layer) in self.layers[from..].iter().enumerate() {
            let (done, rest) = acts.split_at_mut(k + 1);
            layer.forward(&done[k], &mut rest[0]);
        }
    }

    /// Class probabilities for one input.
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let mut acts = Vec::new();
        self.forward_from(0, x, &mut acts);
        let mut p = acts.pop().unwrap_or_default();
        crate::kws::model::softmax_in_place(&mut p);
        p
    }

    /// Zeroed gradients for every layer.
    pub fn zero_grads(&self) -> Grads {
        Grads {
            w: self.layers.iter().map(|l| vec![0.0; l.w.len()]).collect(),
            b: self.layers.iter().map(|l| vec![0.0; l.b.len()]).collect(),
        }
    }

    /// Cross-entropy of one example whose layer-`from` input gave `acts` (from
    /// [`Self::forward_from`]) against `target`; adds `weight` x its gradient to `grads` for
    /// layers `from..`. Returns the loss.
    pub fn backward_from(
        &self,
        from: usize,
        acts: &[Vec<f32>],
        target: Target<'_>,
        weight: f32,
        grads: &mut Grads,
        scratch: &mut (Vec<f32>, Vec<f32>),
    ) -> f32 {
        let (delta, next) = scratch;
        // dL/dlogits = softmax - target.
        delta.clear();
        delta.extend_from_slice(&acts[acts.len() - 1]);
        crate::kws::model::softmax_in_place(delta);
        let loss = match target {
            Target::Label(label) => {
                let loss = -delta.get(label).copied().unwrap_or(1.0).max(1e-12).ln();
                if let Some(d) = delta.get_mut(label) {
                    *d -= 1.0;
                }
                loss
            }
            Target::Soft(t) => {
                debug_assert_eq!(t.len(), delta.len(), "one target value per class");
                let mut loss = 0.0;
                for (d, &ti) in delta.iter_mut().zip(t) {
                    loss -= ti * d.max(1e-12).ln();
                    *d -= ti;
                }
                loss
            }
        };
        delta.iter_mut().for_each(|d| *d *= weight);
        for k in (from..self.layers.len()).rev() {
            let layer = &self.layers[k];
            let (x, y) = (&acts[k - from], &acts[k - from + 1]);
            if layer.relu {
                for (d, &yv) in delta.iter_mut().zip(y) {
                    if yv <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
            let (gw, gb) = (&mut grads.w[k], &mut grads.b[k]);
            for (xr, dr) in x
                .chunks_exact(layer.inputs)
                .zip(delta.chunks_exact(layer.outputs))
            {
                for ((gwo, gbo), &d) in gw.chunks_exact_mut(layer.inputs).zip(gb.iter_mut()).zip(dr)
                {
                    if d == 0.0 {
                        continue;
                    }
                    *gbo += d;
                    for (g, &xv) in gwo.iter_mut().zip(xr) {
                        *g += d * xv;
                    }
                }
            }
            if k > from {
                next.clear();
                next.resize(x.len(), 0.0);
                for (nr, dr) in next
                    .chunks_exact_mut(layer.inputs)
                    .zip(delta.chunks_exact(layer.outputs))
                {
                    for (wo, &d) in layer.w.chunks_exact(layer.inputs).zip(dr) {
                        if d == 0.0 {
                            continue;
                        }
                        for (n, &wv) in nr.iter_mut().zip(wo) {
                            *n += d * wv;
                        }
                    }
                }
                std::mem::swap(delta, next);
            }
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapt::trainer::SplitMix64;

    fn small_net(rng: &mut SplitMix64) -> Net {
        let mut layer = |i, o, relu| Dense::random(rng, i, o, relu, 0.1);
        // A shared layer over 3 rows of 4, then 3*5 -> 6 -> 4, like the shipped head.
        Net {
            layers: vec![layer(4, 5, true), layer(15, 6, true), layer(6, 4, false)],
        }
    }

    fn loss_of(net: &Net, x: &[f32], label: usize) -> f64 {
        let p = net.predict(x);
        -f64::from(p[label]).ln()
    }

    #[test]
    fn backprop_matches_finite_differences() {
        let mut rng = SplitMix64::new(3);
        let net = small_net(&mut rng);
        let x: Vec<f32> = (0..12).map(|_| rng.normal()).collect();
        let label = 2;
        for from in 0..3 {
            let mut acts = Vec::new();
            net.forward_from(0, &x, &mut acts);
            let mut g = net.zero_grads();
            net.backward_from(
                from,
                &acts[from..],
                Target::Label(label),
                1.0,
                &mut g,
                &mut Default::default(),
            );
            let mut checked = 0;
            for k in from..3 {
                for i in 0..net.layers[k].w.len() {
                    let eps = 1e-2f32;
                    let mut plus = net.clone();
                    plus.layers[k].w[i] += eps;
                    let mut minus = net.clone();
                    minus.layers[k].w[i] -= eps;
                    let numeric = (loss_of(&plus, &x, label) - loss_of(&minus, &x, label))
                        / (2.0 * f64::from(eps));
                    let analytic = f64::from(g.w[k][i]);
                    assert!(
                        (numeric - analytic).abs() <= 2e-3 + 2e-2 * numeric.abs(),
                        "from {from} layer {k} weight {i}: numeric {numeric} analytic {analytic}"
                    );
                    checked += 1;
                }
                for i in 0..net.layers[k].b.len() {
                    let eps = 1e-2f32;
                    let mut plus = net.clone();
                    plus.layers[k].b[i] += eps;
                    let mut minus = net.clone();
                    minus.layers[k].b[i] -= eps;
                    let numeric = (loss_of(&plus, &x, label) - loss_of(&minus, &x, label))
                        / (2.0 * f64::from(eps));
                    assert!((numeric - f64::from(g.b[k][i])).abs() <= 2e-3 + 2e-2 * numeric.abs());
                }
            }
            // Layers before `from` get no gradient.
            for k in 0..from {
                assert!(g.w[k].iter().all(|&v| v == 0.0));
            }
            assert!(checked > 20);
        }
    }

    #[test]
    fn a_soft_target_has_the_gradient_of_its_loss_and_a_one_hot_one_is_the_label() {
        let mut rng = SplitMix64::new(5);
        let net = small_net(&mut rng);
        let x: Vec<f32> = (0..12).map(|_| rng.normal()).collect();
        let target = [0.1f32, 0.6, 0.05, 0.25];
        let soft_loss = |n: &Net| -> f64 {
            let p = n.predict(&x);
            -target
                .iter()
                .zip(&p)
                .map(|(&t, &q)| f64::from(t) * f64::from(q).ln())
                .sum::<f64>()
        };
        let mut acts = Vec::new();
        net.forward_from(0, &x, &mut acts);
        let grads_for = |t: Target<'_>| {
            let mut g = net.zero_grads();
            let loss = net.backward_from(0, &acts, t, 1.0, &mut g, &mut Default::default());
            (loss, g)
        };
        let (loss, g) = grads_for(Target::Soft(&target));
        assert!((f64::from(loss) - soft_loss(&net)).abs() < 1e-4);
        for k in 0..3 {
            for i in 0..net.layers[k].w.len() {
                let eps = 1e-2f32;
                let (mut plus, mut minus) = (net.clone(), net.clone());
                plus.layers[k].w[i] += eps;
                minus.layers[k].w[i] -= eps;
                let numeric = (soft_loss(&plus) - soft_loss(&minus)) / (2.0 * f64::from(eps));
                let analytic = f64::from(g.w[k][i]);
                assert!(
                    (numeric - analytic).abs() <= 2e-3 + 2e-2 * numeric.abs(),
                    "layer {k} weight {i}: numeric {numeric} analytic {analytic}"
                );
            }
        }
        let one_hot = [0.0, 0.0, 1.0, 0.0];
        assert_eq!(
            grads_for(Target::Soft(&one_hot)),
            grads_for(Target::Label(2))
        );
    }

    #[test]
    fn dot_sums_every_product_including_the_tail_past_the_lanes() {
        let mut rng = SplitMix64::new(7);
        for n in [0usize, 1, 5, 8, 13, 96, 1024, 1027] {
            let a: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            let got = f64::from(dot(&a, &b));
            assert!(
                (got - exact).abs() <= 1e-4 * (1.0 + exact.abs()),
                "n {n}: {got} vs {exact}"
            );
        }
        // The tail is summed too: one product past the last full group of lanes.
        let mut a = vec![0.0f32; 17];
        a[16] = 3.0;
        assert_eq!(dot(&a, &[2.0; 17]), 6.0);
        // Slices of different lengths: the common length, each value with its partner.
        let b: Vec<f32> = (0..9).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &b), 0.0, "a[16] has no partner in b");
        assert_eq!(dot(&b, &[1.0; 20]), 36.0);
    }

    #[test]
    fn patching_round_trips_through_the_layout() {
        let text = "head_sha256 = \"00\"\ninput = [3, 4]\n[[layer]]\nin = 4\nout = 5\nweight_offset = 0\nbias_offset = 80\nactivation = \"relu\"\n[[layer]]\nin = 15\nout = 4\nweight_offset = 100\nbias_offset = 340\nactivation = \"none\"\n";
        let head = vec![0u8; 400];
        let layout = Layout::parse(text, &head, "00", 4).unwrap();
        let mut rng = SplitMix64::new(1);
        let mut net = Net::from_tflite(&head, &layout);
        for l in &mut net.layers {
            l.w.iter_mut().for_each(|w| *w = rng.normal());
        }
        let patched = net.patch_tflite(&head, &layout);
        assert_eq!(Net::from_tflite(&patched, &layout), net);
        assert!(
            Layout::parse(text, &head, "00", 10).is_err(),
            "class count is checked"
        );
        assert!(
            Layout::parse(text, &head[..300], "00", 4).is_err(),
            "offsets are checked"
        );
        assert!(
            Layout::parse(text, &head, "11", 4).is_err(),
            "the head's sha is checked"
        );
    }
}
