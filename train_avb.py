"""Train Adversarial Variational Bayes on the one-hot pixel data and save the run."""

import sys

from configs import AVBConfig, parse_config


def main(argv=None) -> None:
    request = parse_config(AVBConfig, __doc__, argv)
    import training

    sys.exit(training.run(request))


if __name__ == "__main__":
    main()
