//! The shape of one image between layers: channels × height × width, stored as PyTorch
//! stores NCHW tensors, so a batch is a `(batch, channels * height * width)` matrix whose
//! rows are each image's channels one after another, each channel row-major.

use std::fmt;

/// One image's shape: `channels × height × width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageShape {
    /// Channels (`C`).
    pub channels: usize,
    /// Rows (`H`).
    pub height: usize,
    /// Columns (`W`).
    pub width: usize,
}

impl ImageShape {
    /// A `channels × height × width` shape.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// Values in one image: `C * H * W`, the width of a batch's rows.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether an image holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values in one channel: `H * W`.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// Where a sliding window (a convolution's kernel, a pooling's window) lies on an
/// image: the input shape, `kernel`, `stride` and `padding` (each `(rows, columns)`),
/// and the output size `(OH, OW)`. Each layer adds the methods its loops need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlidingWindow {
    pub(crate) input: ImageShape,
    pub(crate) kernel: (usize, usize),
    pub(crate) stride: (usize, usize),
    pub(crate) padding: (usize, usize),
    pub(crate) output: (usize, usize),
}

impl SlidingWindow {
    /// `None` when the window does not fit the padded image or a stride is zero.
    pub(crate) fn new(
        input: ImageShape,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Option<Self> {
        let height = window_output(input.height, kernel.0, stride.0, padding.0)?;
        let width = window_output(input.width, kernel.1, stride.1, padding.1)?;
        Some(Self {
            input,
            kernel,
            stride,
            padding,
            output: (height, width),
        })
    }

    /// [`SlidingWindow::new`] for `layer`'s constructor `function`.
    ///
    /// # Panics
    /// If the window does not fit the padded image or a stride is zero, naming them.
    #[track_caller]
    pub(crate) fn fitting(
        function: &str,
        input: ImageShape,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Self {
        Self::new(input, kernel, stride, padding).unwrap_or_else(|| {
            panic!(
                "{function}: a {kernel:?} kernel with stride {stride:?} and padding \
                 {padding:?} does not fit a {input} image"
            )
        })
    }

    /// `OH * OW`, the window's positions on one plane.
    pub(crate) fn positions(&self) -> usize {
        self.output.0 * self.output.1
    }
}

/// Asserts that rows of `found` values are images of `expected` shape, for `layer`'s
/// `forward` (a network checks widths when it is built; a lone layer's caller may not).
///
/// # Panics
/// If they are not, naming the layer, both widths and the shape.
#[track_caller]
pub(crate) fn assert_image_rows(layer: &str, found: usize, expected: ImageShape) {
    assert_eq!(
        found,
        expected.len(),
        "{layer}::forward: input has {found} values per row, the layer expects {} ({expected})",
        expected.len(),
    );
}

/// The output size of a sliding window along one axis: `(size + 2 padding - kernel) /
/// stride + 1` (PyTorch's floor mode), or `None` when the window does not fit or the
/// stride is zero.
pub fn window_output(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = size.checked_add(padding.checked_mul(2)?)?;
    if stride == 0 || kernel == 0 || kernel > padded {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}
