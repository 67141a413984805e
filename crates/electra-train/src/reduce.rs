//! The gradient all-reduce of data-parallel training: gradients flattened in module order
//! ([`param_order`]) into buckets, one burn collective all-reduce (mean) per bucket, and a Sum
//! all-reduce of plain values (the exact all-gather between nodes is built on it).

use burn::collective::{PeerId, ReduceOperation, all_reduce};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};

/// Each float parameter of a model, in module order (the same in every process), with its
/// number of dimensions: the order of the gradient all-reduce. burn's
/// `GradientsParams::all_reduce` orders by `ParamId`, which is random per process, so it only
/// works among replicas forked in one process; across nodes the parameters would be paired
/// wrongly.
pub type ParamOrder = Vec<(ParamId, usize)>;

/// The parameter order of `model` (see [`ParamOrder`]).
pub fn param_order<B: Backend, M: Module<B>>(model: &M) -> ParamOrder {
    struct Order(ParamOrder);
    impl<B: Backend> ModuleVisitor<B> for Order {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push((param.id, D));
        }
    }
    let mut order = Order(Vec::new());
    model.visit(&mut order);
    order.0
}

/// Gradients are averaged in buckets of consecutive parameters of about this many bytes: one
/// all-reduce per bucket instead of one per parameter. Each collective call pays a fixed cost
/// (between nodes a websocket round trip and a barrier that opens a connection to every other
/// node), and the bucket bounds the extra memory of the concatenated copy. PyTorch's DDP
/// default is 25 MB; 32 MiB holds `tiny`'s gradients in one bucket and `small`'s in two.
pub(crate) const BUCKET_BYTES: usize = 32 << 20;

/// One parameter's gradient, taken out of the map and flattened, with its shape.
struct Flat<B: Backend> {
    param: ParamId,
    shape: Vec<usize>,
    values: Tensor<B, 1>,
}

fn take_flat<B: Backend, const D: usize>(
    grads: &mut GradientsParams,
    param: ParamId,
) -> Option<Flat<B>> {
    let grad = grads.remove::<B, D>(param)?;
    let shape = grad.dims().to_vec();
    let values = grad.reshape([shape.iter().product::<usize>()]);
    Some(Flat {
        param,
        shape,
        values,
    })
}

fn put_back<B: Backend, const D: usize>(
    grads: &mut GradientsParams,
    param: ParamId,
    shape: &[usize],
    values: Tensor<B, 1>,
) -> Result<(), String> {
    let dims: [usize; D] = shape
        .try_into()
        .map_err(|_| format!("a gradient of shape {shape:?} is not {D}-dimensional"))?;
    grads.register::<B, D>(param, values.reshape(dims));
    Ok(())
}

/// Averages one bucket over every peer and puts its gradients back into `grads`.
fn reduce_bucket<B: Backend>(
    id: PeerId,
    grads: &mut GradientsParams,
    bucket: Vec<Flat<B>>,
) -> Result<(), String> {
    let mut parts = Vec::with_capacity(bucket.len());
    let mut slots = Vec::with_capacity(bucket.len());
    for flat in bucket {
        slots.push((flat.param, flat.shape));
        parts.push(flat.values);
    }
    let joined = Tensor::cat(parts, 0);
    let out = all_reduce::<B>(id, joined.into_primitive().tensor(), ReduceOperation::Mean)
        .map_err(|e| format!("{e:?}"))?;
    let out = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out));
    let mut offset = 0;
    for (param, shape) in slots {
        let n = shape.iter().product::<usize>();
        let values = out.clone().narrow(0, offset, n);
        offset += n;
        match shape.len() {
            1 => put_back::<B, 1>(grads, param, &shape, values)?,
            2 => put_back::<B, 2>(grads, param, &shape, values)?,
            3 => put_back::<B, 3>(grads, param, &shape, values)?,
            4 => put_back::<B, 4>(grads, param, &shape, values)?,
            d => return Err(format!("a parameter with {d} dimensions is not supported")),
        }
    }
    Ok(())
}

/// Averages `grads` over every peer of the collective: the gradients in `order`, flattened and
/// concatenated into buckets of about `bucket_bytes` ([`BUCKET_BYTES`] in training), one
/// all-reduce per bucket. The average
/// is element-wise, so bucketing changes no value: a sum of the peers' values, divided by the
/// peer count, as one tensor at a time would give.
pub(crate) fn reduce_grads<B: Backend>(
    id: PeerId,
    mut grads: GradientsParams,
    order: &[(ParamId, usize)],
    bucket_bytes: usize,
) -> Result<GradientsParams, String> {
    let (mut bucket, mut bytes) = (Vec::new(), 0usize);
    for &(param, dims) in order {
        let flat = match dims {
            1 => take_flat::<B, 1>(&mut grads, param),
            2 => take_flat::<B, 2>(&mut grads, param),
            3 => take_flat::<B, 3>(&mut grads, param),
            4 => take_flat::<B, 4>(&mut grads, param),
            d => return Err(format!("a parameter with {d} dimensions is not supported")),
        };
        let Some(flat) = flat else { continue };
        bytes += flat.values.dims()[0] * std::mem::size_of::<f32>();
        bucket.push(flat);
        if bytes >= bucket_bytes {
            reduce_bucket(id, &mut grads, std::mem::take(&mut bucket))?;
            bytes = 0;
        }
    }
    if !bucket.is_empty() {
        reduce_bucket(id, &mut grads, bucket)?;
    }
    Ok(grads)
}

/// The Sum all-reduce of `values` over every peer.
pub(crate) fn sum_values<B: Backend>(
    id: PeerId,
    values: Vec<f32>,
    device: &B::Device,
) -> Result<Vec<f32>, String> {
    let n = values.len();
    let tensor = Tensor::<B, 1>::from_data(TensorData::new(values, [n]), device);
    let out = all_reduce::<B>(id, tensor.into_primitive().tensor(), ReduceOperation::Sum)
        .map_err(|e| format!("{e:?}"))?;
    Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out))
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}
#[cfg(test)]
mod tests {
    use burn::collective::{CollectiveConfig, finish_collective, register, reset_collective};

    use super::*;

    fn register_grad<const D: usize>(
        grads: &mut GradientsParams,
        shape: [usize; D],
        values: Vec<f32>,
    ) -> ParamId {
        let id = ParamId::new();
        let device = Default::default();
        let tensor =
            Tensor::<burn::backend::Flex, D>::from_data(TensorData::new(values, shape), &device);
        grads.register::<burn::backend::Flex, D>(id, tensor);
        id
    }

    fn grad_values<const D: usize>(grads: &GradientsParams, id: ParamId) -> (Vec<usize>, Vec<f32>) {
        let tensor = grads
            .get::<burn::backend::Flex, D>(id)
            .expect("the gradient is back");
        let shape = tensor.dims().to_vec();
        (shape, tensor.into_data().to_vec::<f32>().expect("f32"))
    }

    /// With one peer the average is the identity, so what comes back shows the buckets'
    /// bookkeeping: every gradient, under its id, with its shape and values, whatever the
    /// bucket size (one bucket each, some together, all in one).
    #[test]
    fn buckets_put_every_gradient_back_with_its_shape_and_values() {
        type F = burn::backend::Flex;
        let config = CollectiveConfig::default().with_num_devices(1);
        reset_collective::<F>();
        register::<F>(PeerId::from(0u32), Default::default(), config).expect("register");
        let value = |k: usize, n: usize| {
            (0..n)
                .map(|i| (k * 100 + i) as f32 * 0.5)
                .collect::<Vec<_>>()
        };
        for bucket_bytes in [4, 48, 200, BUCKET_BYTES] {
            let mut grads = GradientsParams::new();
            let ids = [
                register_grad(&mut grads, [3], value(0, 3)),
                register_grad(&mut grads, [2, 5], value(1, 10)),
                register_grad(&mut grads, [2, 3, 4], value(2, 24)),
                register_grad(&mut grads, [1, 2, 2, 3], value(3, 12)),
            ];
            let order: ParamOrder = ids.iter().zip(1..).map(|(id, d)| (*id, d)).collect();
            let out =
                reduce_grads::<F>(PeerId::from(0u32), grads, &order, bucket_bytes).expect("reduce");
            assert_eq!(grad_values::<1>(&out, ids[0]), (vec![3], value(0, 3)));
            assert_eq!(grad_values::<2>(&out, ids[1]), (vec![2, 5], value(1, 10)));
            assert_eq!(
                grad_values::<3>(&out, ids[2]),
                (vec![2, 3, 4], value(2, 24))
            );
            assert_eq!(
                grad_values::<4>(&out, ids[3]),
                (vec![1, 2, 2, 3], value(3, 12)),
                "{bucket_bytes}"
            );
        }
        finish_collective::<F>(PeerId::from(0u32)).expect("finish");
    }
}
