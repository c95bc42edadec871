"""denoise-bench entry point: ``python run.py [-m] key=value ...`` (see README)."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig):
    from denoise_bench.cli import main as run

    return run(cfg)


if __name__ == "__main__":
    main()
