"""Console commands of mmanat (installed by ``pip install -e .``; see ``setup.py``).

One module per command, each with ``parse_args(argv)`` and ``main(argv=None) -> int``: the
entry only parses the arguments and calls a typed function (of :mod:`mmanat.apis`,
:mod:`mmanat.evaluation` or of the command module itself). :mod:`mmanat.cli.runner` turns an
:class:`~mmanat.utils.exceptions.MMAnatError` into a one-line ``error: ...`` message and exit
code 2, Ctrl-C into exit code 130. Torch and the other heavy modules are imported inside the
functions. ``tools/<script>.py`` run the same ``main``. Output options (``--out``,
``--out-dir``, ``--work-dir``) are checked while parsing (:mod:`mmanat.cli.outputs`), before
any work; checkpoints are checked for their network kind before any model is built
(:func:`mmanat.utils.checkpoint.check_network_fits`).

=================================== ======================== ===============================
command                             module                   tools script
=================================== ======================== ===============================
mmanat-embed                        embed                    embed.py
mmanat-match                        match                    match.py
mmanat-register                     register                 register.py
mmanat-demo (-semantic, -semantic-  demo                     demo*.py
stable-points, -ct-mr)
mmanat-train                        train                    train.py, dist_train.sh
mmanat-test                         test                     test.py
mmanat-benchmark                    benchmark                benchmark.py
mmanat-benchmark-inference          benchmark_inference      benchmark_inference.py
mmanat-preprocess                   preprocess               preprocess.py
mmanat-fetch-data                   fetch_data               fetch_sample_data.py
mmanat-make-synthetic               make_synthetic           make_synthetic_data.py
mmanat-extract-eve                  extract_eve              extract_eve.py
mmanat-eval-lesion-tracking         eval_lesion_tracking     eval_lesion_tracking.py
mmanat-publish-checkpoint           publish_checkpoint       publish_checkpoint.py
mmanat-uae-m-recipe                 uae_m_recipe             uae_m_recipe.py
=================================== ======================== ===============================
"""
