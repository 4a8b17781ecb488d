"""ONNX export, CPU pre-flight checks, TensorRT engine building and runtimes (arrives with the export issue)."""
