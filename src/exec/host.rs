//! The blocking side: uploading the host's slices, submitting, and reading results back.

use wgpu::util::DeviceExt;

use super::bind::word_span;
use super::check;
use crate::region::Element;
use crate::{BufferRegion, Context, Error, Result, Storage};

impl Context {
    /// Uploads each of `inputs` to a buffer of its own, lets `record` encode from them
    /// into an output buffer of `out_len` elements, submits, and reads the output back.
    /// The regions hold `T`'s storage type.
    pub(crate) fn run_with_inputs<T: Element>(
        &self,
        inputs: &[&[T]],
        out_len: usize,
        record: impl FnOnce(
            &mut wgpu::CommandEncoder,
            &[BufferRegion<'_>],
            BufferRegion<'_>,
        ) -> Result<()>,
    ) -> Result<Vec<T>> {
        let out_len = out_len as u64;
        if out_len == 0 || inputs.iter().any(|x| x.is_empty()) {
            return Ok(vec![T::from_f32(0.0); out_len as usize]);
        }
        // whole words: a half tensor of odd length gets a padding element
        let words = |len: u64| (len * T::STORAGE.bytes()).div_ceil(4) * 4;
        let (srcs, dst) = self.scoped(|| {
            let srcs: Vec<wgpu::Buffer> = inputs
                .iter()
                .map(|x| {
                    let mut bytes = bytemuck::cast_slice::<T, u8>(x).to_vec();
                    bytes.resize(words(x.len() as u64) as usize, 0);
                    self.device()
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("run input"),
                            contents: &bytes,
                            usage: wgpu::BufferUsages::STORAGE,
                        })
                })
                .collect();
            let dst = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("run output"),
                size: words(out_len),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (srcs, dst)
        })?;
        let region = |b| BufferRegion::new(b).with_storage(T::STORAGE);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        let regions: Vec<BufferRegion<'_>> = srcs.iter().map(region).collect();
        record(&mut encoder, &regions, region(&dst))?;
        self.scoped(|| self.queue().submit([encoder.finish()]))?;
        let result = self.download_typed(region(&dst), out_len);
        // These buffers never come back: drop the bind groups that hold them.
        self.bindings().retain(|k, _| {
            !k.storage
                .iter()
                .any(|b| b.buffer == dst || srcs.contains(&b.buffer))
        });
        result
    }

    /// A `STORAGE | COPY_SRC` buffer holding `data` (at least one element: wgpu binds no
    /// empty buffer), for the convenience API's parameter tensors and their gradients.
    pub(crate) fn upload(&self, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
        self.upload_as(label, data, Storage::F32)
    }

    /// [`Context::upload`] of `data` rounded once to `storage` (to nearest even), in whole
    /// words.
    pub(crate) fn upload_as(
        &self,
        label: &str,
        data: &[f32],
        storage: Storage,
    ) -> Result<wgpu::Buffer> {
        let data = if data.is_empty() { &[0.0][..] } else { data };
        let mut bytes: Vec<u8> = match storage {
            Storage::F32 => bytemuck::cast_slice(data).to_vec(),
            Storage::F16 => data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            Storage::Bf16 => data
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
        };
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        self.scoped(|| {
            self.device()
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                })
        })
    }

    /// Reads `len` elements of a buffer (which needs `COPY_SRC` usage) back to the host
    /// as f32 (f16 and bf16 elements widened exactly), waiting for all submitted work
    /// first.
    pub fn download(&self, region: BufferRegion<'_>, len: u64) -> Result<Vec<f32>> {
        fn widen<T: Element>(values: Result<Vec<T>>) -> Result<Vec<f32>> {
            values.map(|v| v.into_iter().map(Element::to_f32).collect())
        }
        match region.storage {
            Storage::F32 => self.download_typed::<f32>(region, len),
            Storage::F16 => widen(self.download_typed::<half::f16>(region, len)),
            Storage::Bf16 => widen(self.download_typed::<half::bf16>(region, len)),
        }
    }

    /// Reads `len` elements of type `T` (the region's storage type) of a buffer (which
    /// needs `COPY_SRC` usage) back to the host, waiting for all submitted work first.
    ///
    /// ```no_run
    /// # use wgpu_activations::{BufferRegion, Context, Storage};
    /// # fn demo(ctx: &Context, y: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let y = BufferRegion::new(y).with_storage(Storage::Bf16);
    /// let values: Vec<half::bf16> = ctx.download_typed(y, 1000)?;
    /// # Ok(()) }
    /// ```
    pub fn download_typed<T: Element>(&self, region: BufferRegion<'_>, len: u64) -> Result<Vec<T>> {
        let role = "download source";
        check::usage(role, region.buffer, wgpu::BufferUsages::COPY_SRC)?;
        if region.storage != T::STORAGE {
            return Err(Error::Unsupported(format!(
                "the download source holds {} but {} was asked for",
                region.storage,
                T::STORAGE
            )));
        }
        check::aligned(role, region)?;
        // Overflowing lengths are too long for any buffer, not a wrapped small copy.
        check::extent(role, region, len)?;
        check::unmapped_and_alive(role, region.buffer)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        // Copies are whole words: a half tensor may begin or end inside one.
        let (start, size) = word_span(region.offset, region.bytes(len));
        let words = self.read_back(region.buffer, start, size)?;
        let skip = (region.offset - start) as usize;
        let bytes = &words[skip..skip + region.bytes(len) as usize];
        // an odd skip is not aligned for T: copy element by element
        Ok(bytes
            .chunks_exact(std::mem::size_of::<T>())
            .map(bytemuck::pod_read_unaligned)
            .collect())
    }

    /// `size` bytes of `buffer` (which needs `COPY_SRC` usage) from `start` (both
    /// multiples of 4), after all submitted work.
    pub(crate) fn read_back(
        &self,
        buffer: &wgpu::Buffer,
        start: u64,
        size: u64,
    ) -> Result<Vec<u8>> {
        let staging = self.scoped(|| {
            let staging = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("download staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = self.device().create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, start, &staging, 0, size);
            self.queue().submit([encoder.finish()]);
            staging
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            // The receiver outlives the wait below; a send error cannot happen.
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| Error::Readback(e.to_string()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let bytes = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::Readback(e.to_string()))?
            .to_vec(); // the view drops here, before unmap
        staging.unmap();
        Ok(bytes)
    }
}
