"""Train a VAE on the one-hot pixel data and save the run; --importance-samples K trains an
IWAE instead, --posterior flow a VAE with a normalizing-flow posterior."""

from configs import VAEConfig, parse_config


def main(argv=None) -> None:
    request = parse_config(VAEConfig, __doc__, argv)
    import startup
    import training

    startup.end_process(training.run(request))


if __name__ == "__main__":
    main()
