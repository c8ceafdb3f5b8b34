//! Checkpoints: nabla's own round trip and files written by NumPy in PyTorch's layout.

use std::path::Path;

use nabla::checkpoint::{self, CheckpointError};
use nabla::{ActivationKind, Init, Layer, MultiLayerPerceptron};
use ndarray::{array, Array2};

#[test]
fn save_and_load_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.npz");
    let model = MultiLayerPerceptron::<f32>::from_sizes(
        &[7, 5, 4, 3],
        ActivationKind::Tanh,
        Init::Xavier,
        9,
    )
    .unwrap();
    checkpoint::save(&model, &path).unwrap();
    let loaded = checkpoint::load::<f32>(&path).unwrap();
    assert_eq!(loaded.layers().len(), 5);
    assert!(
        matches!(loaded.layers()[1], Layer::Activation(ref a) if a.kind() == ActivationKind::Tanh)
    );
    for (a, b) in model.linear_layers().zip(loaded.linear_layers()) {
        assert_eq!(a.weights(), b.weights());
        assert_eq!(a.bias(), b.bias());
    }
    // An f32 checkpoint loads into an f64 model too.
    let widened = checkpoint::load::<f64>(&path).unwrap();
    assert_eq!(
        widened.linear_layers().next().unwrap().weights(),
        model
            .linear_layers()
            .next()
            .unwrap()
            .weights()
            .mapv(f64::from)
    );
    assert!(!dir.path().join("model.npz.tmp").exists());
}

#[test]
fn loads_a_numpy_written_state_dict() {
    // tests/fixtures/numpy_sequential.npz was written with NumPy, as a PyTorch
    // nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2)) state_dict would be saved:
    //   w0 = (np.arange(12, dtype=np.float32).reshape(3, 4) - 6) / 8
    //   b0 = np.array([0.5, -0.25, 0.125], dtype=np.float32)
    //   w2 = (np.arange(6, dtype=np.float64).reshape(2, 3) - 3) / 4
    //   b2 = np.array([1.0, -1.0])
    //   np.savez('numpy_sequential.npz', **{'0.weight': w0, '0.bias': b0, '2.weight': w2, '2.bias': b2})
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy_sequential.npz");
    let mut model =
        MultiLayerPerceptron::<f32>::from_sizes(&[4, 3, 2], ActivationKind::Relu, Init::Zeros, 1)
            .unwrap();
    checkpoint::load_weights_into(&mut model, &fixture).unwrap();
    let layers: Vec<_> = model.linear_layers().collect();
    // Every entry of 0.weight: (arange(12).reshape(3, 4) - 6) / 8.
    let expected = Array2::from_shape_fn((3, 4), |(i, j)| ((i * 4 + j) as f32 - 6.0) / 8.0);
    assert_eq!(layers[0].weights(), expected);
    assert_eq!(layers[0].bias(), array![0.5f32, -0.25, 0.125]);
    assert_eq!(
        layers[1].weights(),
        array![[-0.75f32, -0.5, -0.25], [0.0, 0.25, 0.5]]
    );
    assert_eq!(layers[1].bias(), array![1.0f32, -1.0]);

    // A model of another shape is refused, naming the key and both shapes.
    let mut wrong =
        MultiLayerPerceptron::<f32>::from_sizes(&[5, 3, 2], ActivationKind::Relu, Init::Zeros, 1)
            .unwrap();
    let error = checkpoint::load_weights_into(&mut wrong, &fixture).unwrap_err();
    assert!(
        matches!(error, CheckpointError::Shape { ref key, .. } if key == "0.weight"),
        "{error}"
    );
    // A model with more layers than the file is refused, naming the missing key.
    let mut deeper = MultiLayerPerceptron::<f32>::from_sizes(
        &[4, 3, 2, 2],
        ActivationKind::Relu,
        Init::Zeros,
        1,
    )
    .unwrap();
    let error = checkpoint::load_weights_into(&mut deeper, &fixture).unwrap_err();
    assert!(error.to_string().contains("no array '4.weight'"), "{error}");
}

#[test]
fn missing_or_corrupt_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = checkpoint::load::<f32>(&dir.path().join("none.npz")).unwrap_err();
    assert!(missing.to_string().contains("none.json"), "{missing}");
    let path = dir.path().join("bad.npz");
    std::fs::write(&path, b"not a zip").unwrap();
    let mut model =
        MultiLayerPerceptron::<f32>::from_sizes(&[4, 3, 2], ActivationKind::Relu, Init::Zeros, 1)
            .unwrap();
    let error = checkpoint::load_weights_into(&mut model, &path).unwrap_err();
    assert!(
        matches!(error, CheckpointError::Zip { .. }) && error.to_string().contains("bad.npz"),
        "{error}"
    );
}
