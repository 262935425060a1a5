"""``filters``: class- and artifact-specific filters of a model. The stage's runner
(:mod:`.runner`) ranks them (:mod:`.report`, what it reads and reports around the ranking:
:mod:`.outputs`) and logs into its run the attribution part (:mod:`.runner_attribution`) and
two probes of the rankings (:mod:`.probes`, logged by :mod:`.runner_probes`): does removing a
class's ranked filters lower its score (ablation), and where in an image do the units respond
(Network Dissection on the synthetic set's concept masks)."""
