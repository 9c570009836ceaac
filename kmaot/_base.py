"""scikit-learn's estimator protocol without importing scikit-learn.

``get_params`` / ``set_params`` read the constructor signature, so that
``sklearn.base.clone``, grid searches and pipelines work with kmaot estimators.
"""
_EMPTY = object()


def _init_defaults(cls):
    """{parameter name: default} of ``cls.__init__`` (``_EMPTY`` when it has none), read
    from the code object: ``inspect`` costs ~20 ms of import time that a cold start of
    ``import kmaot`` should not pay."""
    init = cls.__init__
    code = init.__code__
    pos = code.co_varnames[:code.co_argcount]
    kwonly = code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]
    pos_defaults = init.__defaults__ or ()
    out = {name: _EMPTY for name in pos[1:]}  # skip self
    for name, value in zip(pos[len(pos) - len(pos_defaults):], pos_defaults):
        out[name] = value
    kw_defaults = init.__kwdefaults__ or {}
    for name in kwonly:
        out[name] = kw_defaults.get(name, _EMPTY)
    return out


class NotFittedError(ValueError, AttributeError):
    """Raised when predict/transform/score is called before fit (scikit-learn's
    ``NotFittedError`` derives from the same two classes)."""


class ParamsMixin:
    _estimator_type = "clusterer"

    @classmethod
    def _param_names(cls):
        return sorted(_init_defaults(cls))

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = _init_defaults(type(self))
        changed = []
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults.get(name, _EMPTY)
            try:
                same = value is default or bool(value == default)
            except Exception:
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        # only ever called by scikit-learn, which is then imported already
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(estimator_type=self._estimator_type,
                    target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags())

    def _check_fitted(self):
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' first")
