"""The data engine: synthetic RGB-D scenes, spatial questions with chains of thought, training mixtures.

Pipeline (``sr-real data synth | qa | build``):

- assets    the pybullet_data objects scenes are built from, and their exact render geometry
- synth     table-top and room scenes rendered with TinyRenderer, annotated in the camera frame
- facts     what is true in a scene (question families, ambiguity margins), from any scenes file
- units     lengths in human units (cm/inches under 1 m, m/feet up to 3 m, mostly m beyond)
- cot       LOR and DTR chains of thought written from the geometry
- qa        question records with machine-readable truth, marked images
- rewrite   optional rewriting of chains of thought by an OpenAI-compatible endpoint
- mixture   SFT/RL records split by scene, in TRL's formats, from a YAML config
- files     image and JSON Lines writing
- cli       the ``sr-real data`` subcommands

Region references ("the red bbox <region>") and the marks drawn on images: `sr_real_core.marks`.
"""
