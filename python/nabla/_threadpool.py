"""nabla in threadpoolctl: ``threadpool_info()`` lists nabla with the threads a fit
would use now, and ``threadpool_limits(n)`` limits them, as it limits OpenBLAS and
OpenMP (joblib and scikit-learn use it to keep nested parallelism from oversubscribing
the cores).

threadpoolctl finds libraries among those loaded in the process by file name and
symbols: nabla's extension module exports ``nabla_get_num_threads`` and
``nabla_set_num_threads``.
"""

try:
    from threadpoolctl import LibController, register
except ImportError:  # threadpoolctl older than 3.5, or absent: nothing to register
    LibController = register = None


if LibController is not None:

    class NablaController(LibController):
        """threadpoolctl's controller for nabla's threads."""

        user_api = "nabla"
        internal_api = "nabla"
        filename_prefixes = ("_core",)
        check_symbols = ("nabla_get_num_threads", "nabla_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.nabla_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.nabla_set_num_threads(int(num_threads))

        def get_version(self):
            from importlib.metadata import PackageNotFoundError, version

            try:
                return version("nabla")
            except PackageNotFoundError:
                return None

    register(NablaController)
