"""Inference: `loading` (load_model, the default model, devices), `forward` (the one forward
path: tiling, precision, super_resolve, upscale_image), `files` (`srgrad upscale` over files
and folders) and `onnx` (ONNX export)."""
