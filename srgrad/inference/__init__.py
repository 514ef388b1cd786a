"""Inference: `forward` (the one forward path: tiling, precision, load_model, super_resolve,
upscale_image), `files` (`srgrad upscale` over files and folders) and `onnx` (ONNX export)."""
