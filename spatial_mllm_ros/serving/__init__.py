"""The model server (``spatial-mllm-serve``): the model on Ray Serve for a fleet of robots whose
nodes are HTTP clients (:mod:`spatial_mllm_ros.answering.remote`). Imports Ray; the robot side
never imports this package."""
