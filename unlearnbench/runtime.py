"""Where and how tensors are computed: device, mixed precision, memory format, data placement."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from unlearnbench.errors import ConfigError

# Keys of the `trainer` config that are ours, not `pytorch_lightning.Trainer` arguments.
RUNTIME_KEYS = ("channels_last", "data_on_device", "eval_batch_size", "num_workers")


@dataclass
class Runtime:
    device: torch.device
    precision: str = "32-true"
    channels_last: bool = False
    data_on_device: bool = True
    eval_batch_size: int = 1024
    num_workers: int = 2
    progress: bool = True

    @classmethod
    def from_trainer_cfg(cls, trainer: dict, data_bytes: int = 0) -> Runtime:
        accelerator = str(trainer.get("accelerator", "cpu"))
        cuda = torch.cuda.is_available()
        if accelerator in ("gpu", "cuda") and not cuda:
            raise ConfigError("trainer", f"gpu (accelerator={accelerator})", "cpu (no CUDA device is visible)")
        device = torch.device("cuda" if cuda and accelerator in ("gpu", "cuda", "auto") else "cpu")
        place = trainer.get("data_on_device", "auto")
        if place == "auto":
            # Keep the whole dataset on the GPU when it takes under half the free memory.
            place = device.type != "cuda" or data_bytes < 0.5 * torch.cuda.mem_get_info(device)[0]
        return cls(
            device=device,
            precision=str(trainer.get("precision", "32-true")),
            channels_last=bool(trainer.get("channels_last", False)) and device.type == "cuda",
            data_on_device=bool(place),
            eval_batch_size=int(trainer.get("eval_batch_size", 1024)),
            num_workers=int(trainer.get("num_workers", 2)),
            progress=bool(trainer.get("enable_progress_bar", True)),
        )

    def autocast(self):
        """bf16/fp16 autocast on CUDA when the precision asks for it; a no-op otherwise."""
        if self.device.type == "cuda" and self.precision.startswith(("bf16", "16")):
            dtype = torch.bfloat16 if self.precision.startswith("bf16") else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    def batches(self, x: torch.Tensor, y: torch.Tensor, **kwargs):
        """Batches of (x, y) for this device: tensors resident on it, or streamed by a DataLoader."""
        from unlearnbench.data.batches import LoaderBatches, TensorBatches

        kwargs["channels_last"] = self.channels_last
        if self.data_on_device:
            return TensorBatches(x.to(self.device), y.to(self.device), **kwargs)
        return LoaderBatches(x, y, device=self.device, num_workers=self.num_workers, **kwargs)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model
