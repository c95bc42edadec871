"""Network architectures that are bigger than one method file (built from ``denoise_bench.flows``)."""
