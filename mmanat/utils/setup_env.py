"""Registry scope helpers."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmanat module that registers components, and set the default scope.

    Building from a config does not need this (the registries import their ``locations``
    lazily); call it when you want ``MODELS.module_dict`` etc. fully populated, e.g. to list
    what is available.

    Args:
        init_default_scope: make ``mmanat`` the current default scope so that unprefixed
            ``type`` names resolve to mmanat components.
    """
    # Each registry imports the subpackages named in its ``locations`` (mmanat/registry.py):
    # the registries stay the single list of where components live, and this bottom-layer
    # module needs no import of the layers above it.
    from mmengine.registry import Registry

    import mmanat.registry as registries
    for registry in vars(registries).values():
        if isinstance(registry, Registry) and registry.scope == 'mmanat':
            registry.import_from_location()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('mmanat'):
        DefaultScope.get_instance('mmanat', scope_name='mmanat')
    elif current.scope_name != 'mmanat':
        warnings.warn(f'The current default scope "{current.scope_name}" is not "mmanat"; '
                      'creating a new default scope named "mmanat".')
        name = f'mmanat-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='mmanat')
