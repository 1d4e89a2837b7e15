"""Train Adversarial Variational Bayes on the one-hot pixel data and save the run."""

import runstart
import startup
from configs import AVBConfig


def main(argv=None) -> None:
    request = runstart.parse_run(AVBConfig, __doc__, argv)
    import scriptrun   # here, after parsing: --help and usage errors never load TensorFlow

    startup.end_process(scriptrun.run(request))


if __name__ == "__main__":
    main()
