//! The dropout kernel's mask follows `Backend::seed`. Its own test binary (its own process):
//! the backend's random stream is process-wide, and the library's unit tests, running on
//! parallel threads, draw from it (model initialisation) between another test's seed and
//! its draw.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use electra_model::kernels::dropout;

type Ad = Autodiff<Flex>;

#[test]
fn dropout_mask_is_seeded_and_its_gradient_uses_the_same_mask() {
    let device = Default::default();
    let x = Tensor::<Ad, 2>::ones([64, 256], &device);
    let draw = |seed| {
        Ad::seed(&device, seed);
        let tracked = x.clone().require_grad();
        let y = dropout(tracked.clone(), 0.25);
        let g = Tensor::<Ad, 2>::from_inner(tracked.grad(&y.clone().sum().backward()).expect("dx"));
        (
            y.into_data().iter::<f32>().collect::<Vec<_>>(),
            g.into_data().iter::<f32>().collect::<Vec<_>>(),
        )
    };
    let (a, ga) = draw(1);
    let (b, _) = draw(1);
    let (c, _) = draw(2);
    assert_eq!(a, b, "same seed, same mask");
    assert_ne!(a, c, "another seed, another mask");
    assert_eq!(a, ga, "d(sum(x·keep))/dx = keep");
    let kept = a.iter().filter(|&&v| v > 0.0).count() as f64 / a.len() as f64;
    assert!((kept - 0.75).abs() < 0.01, "kept fraction {kept}");
    assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
}
