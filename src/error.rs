//! The crate's one error type.

/// Everything that can go wrong, with messages that say what was expected and what was
/// found. No public function panics on user input; they return this instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec string that does not parse or names an invalid value.
    #[error("invalid activation spec `{spec}`: {reason}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No adapter at all: neither a GPU nor a software rasteriser.
    #[error(
        "no GPU adapter found ({0}); on Debian/Ubuntu without a GPU install Mesa's software \
         Vulkan driver: `apt-get install -y mesa-vulkan-drivers libvulkan1`"
    )]
    NoAdapter(String),

    /// The adapter refused to create a device.
    #[error("could not create a device on `{adapter}`: {reason}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's reason.
        reason: String,
    },

    /// The device lacks features this call needs.
    #[error("the device lacks required features {missing:?} (it has {available:?})")]
    MissingFeature {
        /// The features this call needs that the device lacks.
        missing: wgpu::Features,
        /// The features the device has.
        available: wgpu::Features,
    },

    /// A buffer was created without a usage flag this call needs.
    #[error(
        "the {role} buffer lacks {missing:?} usage (it has {actual:?}); create it with {missing:?}"
    )]
    MissingUsage {
        /// Which buffer of the call ("input", "output", "weight", ...).
        role: &'static str,
        /// The usage it needs.
        missing: wgpu::BufferUsages,
        /// The usages it was created with.
        actual: wgpu::BufferUsages,
    },

    /// A buffer is too small for the requested range.
    #[error(
        "the {role} buffer is too small: offset {offset} + {len} elements needs {needed} \
         bytes (in whole 4-byte words), the buffer has {size}"
    )]
    BufferTooSmall {
        /// Which buffer of the call.
        role: &'static str,
        /// The region's byte offset.
        offset: u64,
        /// The elements asked for.
        len: u64,
        /// The bytes that needs (`u64::MAX` where the count overflows).
        needed: u64,
        /// The buffer's size in bytes.
        size: u64,
    },

    /// A byte offset that is not a multiple of the element size (4 bytes for f32, 2 for
    /// f16 and bf16).
    #[error("the {role} offset {offset} is not a multiple of {element} bytes (the element size)")]
    Misaligned {
        /// Which buffer of the call.
        role: &'static str,
        /// The offset given.
        offset: u64,
        /// The region's element size in bytes.
        element: u64,
    },

    /// Input and output share a buffer and overlap where they may not: ranges that are
    /// not the same, or any overlap for an op that cannot run in place. `hint` says what
    /// to do.
    #[error(
        "the {first} bytes {input:?} and the {second} bytes {output:?} of one buffer \
         overlap; {hint}"
    )]
    Overlap {
        /// What the first range holds ("input", "weight", ...).
        first: &'static str,
        /// What the second range holds ("output").
        second: &'static str,
        /// The first range's bytes.
        input: std::ops::Range<u64>,
        /// The second range's bytes.
        output: std::ops::Range<u64>,
        /// What to do instead.
        hint: &'static str,
    },

    /// An auxiliary buffer (prelu's weights, dice's statistics or alpha) is the output's
    /// buffer: wgpu does not let one dispatch bind a buffer read-only and writable.
    #[error(
        "the {role} is in the output's buffer; wgpu does not let one dispatch read a buffer \
         through a read-only binding while writing it: put the {role} in a buffer of its own"
    )]
    SharesOutputBuffer {
        /// Which auxiliary buffer.
        role: &'static str,
    },

    /// A buffer still mapped for the host (created `mapped_at_creation` and never
    /// unmapped, or mapped by `map_async` over its first word): no kernel may bind it until
    /// it is unmapped, and wgpu would report it only at the caller's submit.
    #[error(
        "the {role} buffer is still mapped for the host (mapped_at_creation or map_async); \
         call `buffer.unmap()` before passing it to a kernel or a copy"
    )]
    BufferMapped {
        /// Which buffer of the call.
        role: &'static str,
    },

    /// A buffer the caller destroyed (`Buffer::destroy`): nothing may bind or copy it.
    #[error(
        "the {role} buffer has been destroyed; pass a live buffer (and call \
         `Context::release_cached_bindings` after destroying buffers you passed before)"
    )]
    BufferDestroyed {
        /// Which buffer of the call.
        role: &'static str,
    },

    /// Input and output lengths differ.
    #[error("length mismatch: input has {input} elements, output has room for {output}")]
    LengthMismatch {
        /// The input's elements.
        input: usize,
        /// The output's room.
        output: usize,
    },

    /// A backward call's saved tensor and grad_output differ in length.
    #[error(
        "the saved tensor has {saved} elements and grad_output {grad_output}: a backward \
         takes both of the forward's shape"
    )]
    GradientLength {
        /// The saved tensor's elements.
        saved: usize,
        /// grad_output's elements.
        grad_output: usize,
    },

    /// A tensor shape that does not fit the data or the op (`dim` out of range, a
    /// product that differs from the element count).
    #[error("invalid shape {shape:?}: {reason}")]
    Shape {
        /// The shape given.
        shape: Vec<usize>,
        /// What is wrong with it.
        reason: String,
    },

    /// A request this crate cannot serve on this device, with the reason.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// wgpu reported an error for an operation of this crate (caught in an error scope),
    /// or waiting for the device failed: the message with wgpu's causes, and wgpu's error
    /// itself as the source.
    #[error("wgpu error: {message}")]
    Wgpu {
        /// What wgpu said, with its chain of causes.
        message: String,
        /// wgpu's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// WGSL that does not parse or validate (a shader of this crate, or one given to
    /// [`crate::shader::validate_wgsl`]): naga's report with the source lines, and naga's
    /// error as the source.
    #[error("{report}")]
    Shader {
        /// naga's report, with the offending lines of WGSL.
        report: String,
        /// naga's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A thread panicked while holding one of the context's locks (compiling a pipeline);
    /// the context's caches may be incomplete.
    #[error("a thread panicked while {0}; create a new Context")]
    Poisoned(&'static str),

    /// A file this crate reads or writes (the pipeline-cache file): what it was doing,
    /// the file, and the operating system's error as the source.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What this crate was doing ("read the pipeline cache", ...).
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Reading results back from the GPU failed.
    #[error("reading results back failed: {0}")]
    Readback(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
