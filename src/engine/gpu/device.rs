//! The wgpu device behind a GPU engine: adapter selection, error capture, pipeline and buffer
//! creation, submission and readback. Every wgpu error becomes [`Error::Gpu`].
//!
//! wgpu reports most errors asynchronously and by default panics on an error that no error scope
//! captures. This module installs handlers for uncaptured errors and device loss that store the
//! first message, and every operation checks that store before and after it runs.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};

/// The first uncaptured error or device-loss message, shared with wgpu's callbacks.
type FailureSlot = Arc<Mutex<Option<String>>>;

/// Bytes in a mebibyte, the unit of the size messages.
const MIB: u64 = 1 << 20;

/// A wgpu instance, adapter, device and queue, with the device's failures captured.
pub(super) struct GpuDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    adapter: wgpu::Adapter,
    // The instance must outlive the adapter and device created from it.
    _instance: wgpu::Instance,
    failure: FailureSlot,
}

/// Creates an instance over Vulkan, Metal and DirectX 12, or over the backends listed in the
/// `WGPU_BACKEND` environment variable (for example `vulkan` or `gl`).
fn create_instance() -> wgpu::Instance {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::PRIMARY;
    wgpu::Instance::new(descriptor.with_env())
}

/// Returns the adapter wgpu picks, preferring a discrete GPU unless `WGPU_POWER_PREF` sets
/// another preference.
pub(super) fn request_adapter() -> Result<(wgpu::Instance, wgpu::Adapter)> {
    let instance = create_instance();
    let options = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
        force_fallback_adapter: false,
        compatible_surface: None,
    };
    let adapter = pollster::block_on(instance.request_adapter(&options)).map_err(|error| {
        Error::Gpu(format!(
            "no GPU adapter found ({error}); install a Vulkan, Metal or DirectX 12 driver (on Linux \
             without a GPU, Mesa's lavapipe from the mesa-vulkan-drivers package), or name an \
             available backend in WGPU_BACKEND"
        ))
    })?;
    Ok((instance, adapter))
}

/// Formats an adapter as its name and backend, for example "llvmpipe (LLVM 15.0.6, 256 bits) on vulkan".
pub(super) fn describe_adapter(adapter: &wgpu::Adapter) -> String {
    let info = adapter.get_info();
    format!("{} on {}", info.name, info.backend)
}

/// Returns the largest buffer, in bytes, that a shader can bind on a device with `limits`.
pub(super) fn max_binding_bytes(limits: &wgpu::Limits) -> u64 {
    limits.max_storage_buffer_binding_size.min(limits.max_buffer_size)
}

/// Formats a byte count in whole mebibytes, rounded up.
pub(super) fn mebibytes(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

fn record_failure(slot: &FailureSlot, message: String) {
    let mut failure = slot.lock().unwrap_or_else(PoisonError::into_inner);
    failure.get_or_insert(message);
}

impl GpuDevice {
    /// Opens the default adapter and creates a device with the adapter's own limits, because the
    /// WebGPU default limits cap a storage buffer at 128 MiB.
    pub fn new() -> Result<Self> {
        let (instance, adapter) = request_adapter()?;
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("eccentric"),
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor)).map_err(|error| {
            Error::Gpu(format!("creating a device on {} failed: {error}", describe_adapter(&adapter)))
        })?;

        let failure = FailureSlot::default();
        let slot = Arc::clone(&failure);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            record_failure(&slot, format!("the GPU reported an error: {error}"));
        }));
        let slot = Arc::clone(&failure);
        device.set_device_lost_callback(move |reason, message| {
            let detail = if message.is_empty() { String::new() } else { format!(": {message}") };
            record_failure(&slot, format!("the GPU device was lost ({reason:?}{detail})"));
        });

        Ok(Self { device, queue, adapter, _instance: instance, failure })
    }

    pub fn adapter_name(&self) -> String {
        describe_adapter(&self.adapter)
    }

    /// True for an adapter that runs on the CPU, such as Mesa's lavapipe.
    pub fn is_software(&self) -> bool {
        self.adapter.get_info().device_type == wgpu::DeviceType::Cpu
    }

    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// Returns the first error the device reported outside an error scope, or its loss.
    pub fn check(&self) -> Result<()> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match failure.as_ref() {
            Some(message) => Err(Error::Gpu(message.clone())),
            None => Ok(()),
        }
    }

    /// Runs `create` inside error scopes, so that a validation, out-of-memory or internal error
    /// it causes returns as [`Error::Gpu`] naming `operation` instead of reaching the panic handler.
    pub fn capture<T>(&self, operation: &str, create: impl FnOnce(&wgpu::Device) -> T) -> Result<T> {
        self.check()?;
        let memory_scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal_scope = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation_scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = create(&self.device);
        let validation = pollster::block_on(validation_scope.pop());
        let internal = pollster::block_on(internal_scope.pop());
        let memory = pollster::block_on(memory_scope.pop());

        if let Some(error) = memory {
            return Err(Error::Gpu(format!("{operation} ran out of GPU memory ({error}); lower n or d")));
        }
        if let Some(error) = validation.or(internal) {
            return Err(Error::Gpu(format!("{operation} failed: {error}")));
        }
        self.check()?;
        Ok(value)
    }

    /// Compiles `source` and creates a compute pipeline for `entry_point` with the pipeline
    /// constants `constants` and the bind group layout derived from the shader.
    pub fn create_pipeline(
        &self,
        name: &str,
        source: &str,
        entry_point: &str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        self.capture(&format!("compiling the {name} shader"), |device| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    // Every shader writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        })
    }

    pub fn create_buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let operation = format!("allocating the {label} buffer ({} MiB)", mebibytes(size));
        self.capture(&operation, |device| {
            device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false })
        })
    }

    /// Creates a bind group for group 0 of `pipeline` with `buffers` at bindings 0, 1, 2 ...,
    /// or at the binding numbers given in `bindings` when that is not empty.
    pub fn create_bind_group(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        bindings: &[u32],
        buffers: &[&wgpu::Buffer],
    ) -> Result<wgpu::BindGroup> {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(position, buffer)| wgpu::BindGroupEntry {
                binding: bindings.get(position).copied().unwrap_or(position as u32),
                resource: buffer.as_entire_binding(),
            })
            .collect();
        self.capture(&format!("binding the buffers of the {label} shader"), |device| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        })
    }

    pub fn create_encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Submits `encoder` and reports any error that encoding or submission raised.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<wgpu::SubmissionIndex> {
        self.check()?;
        let index = self.queue.submit([encoder.finish()]);
        self.check()?;
        Ok(index)
    }

    /// Blocks until the GPU has finished `submission`, or every submission when it is `None`.
    pub fn wait(&self, submission: Option<wgpu::SubmissionIndex>) -> Result<()> {
        let poll = wgpu::PollType::Wait { submission_index: submission, timeout: None };
        self.device.poll(poll).map_err(|error| Error::Gpu(format!("waiting for the GPU failed: {error}")))?;
        self.check()
    }

    /// Copies each `(buffer, bytes)` source into one staging buffer, waits for the GPU and returns
    /// the bytes of each source in order. Sizes must be multiples of 4.
    pub fn read_back(&self, sources: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>> {
        let total: u64 = sources.iter().map(|(_, size)| size).sum();
        let staging = self.create_buffer("readback", total, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)?;
        let mut encoder = self.create_encoder("readback");
        let mut offset = 0;
        for (buffer, size) in sources {
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, offset, *size);
            offset += size;
        }
        let submission = self.submit(encoder)?;

        let (sender, receiver) = mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
            // The send fails only when the wait below failed and the receiver is gone, and
            // that failure is already being returned.
            let _ = sender.send(result);
        });
        self.wait(Some(submission))?;
        match receiver.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(Error::Gpu(format!("mapping the readback buffer failed: {error}"))),
            Err(_) => return Err(Error::Gpu("the readback buffer was not mapped after the GPU finished".into())),
        }

        let view = staging.slice(..).get_mapped_range();
        let mut parts = Vec::with_capacity(sources.len());
        let mut start = 0;
        for (_, size) in sources {
            let end = start + *size as usize;
            parts.push(view[start..end].to_vec());
            start = end;
        }
        drop(view);
        staging.unmap();
        Ok(parts)
    }

    /// Destroys the device, as a driver reset would, so tests can check how a lost device is
    /// reported.
    pub fn destroy(&self) {
        self.device.destroy();
    }
}
