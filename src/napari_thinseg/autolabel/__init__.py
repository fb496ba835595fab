"""Auto-labelling: a photo's first labels without a model.

- :mod:`.rule`: the seed's gray-level rule (tunable) and the blue-epoxy
  method, :func:`~.rule.autolabel`;
- :mod:`.fast`: the same rule on uint8 photos through lookup tables;
- :mod:`.epoxy`: the epoxy finder that adapts to the photo's dye;
- :mod:`.preview`: a cheap preview of the rule while its sliders move.
"""
