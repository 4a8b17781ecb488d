"""sr_real_core: everything of SR-REAL that needs no ROS install (it imports neither training nor rclpy).

Data flow of one question, and the module of each step:

    image (+ depth, intrinsics)          query.Query: the one request type; ros.service builds it from camera
                                         messages, `sr-real ask` / evaluation / training from files and records
    -> regions                           query.Region (box or mask, image index, mark name "red bbox");
                                         ros.requests resolves boxes, detections and clicked points to Regions;
                                         marks draws them on the image in their colours
    -> 3D points                         model.processing: depth back-projected (geometry.depth_to_points), one
                                         mean point per image token -> `image_points`
    -> region tokens                     model.processing: each Region -> a row of `region_weights` (its
                                         coverage of the image tokens) and of `region_points` (its 3D evidence:
                                         region3d's lift of its depth pixels); model.modeling fills the
                                         question's `<region>` tokens with the normalised pooled features plus
                                         the encoded evidence; the 3D encoding is added to the image tokens
    -> grammar                           inference builds the prompt (grammar.build_prompt), generates, and
                                         parses the LOR / DTR completion (grammar.parse_completion, answers)
    -> reward                            rewards scores a completion (format, accuracy, detection -> total);
                                         metrics and evaluation score a model on benchmarks

region3d serves both sides: it lifts ground truth and measured centres (scene annotations, the node's
measured detections) and, through model.processing, each region's 3D evidence for the model; the model
writes its own (amodal) centres in `<detect>`.

Modules:
- query       `Query`, `Region`, the path / answer-type / backend vocabularies and shared defaults.
- geometry    pinhole intrinsics (incl. ROS CameraInfo, plumb_bob/equidistant distortion), depth decoding,
              projection and back-projection in the OpenCV camera frame (+x right, +y down, +z forward), metres.
- region3d    ground truth and measurement: a 2D box or mask + depth + intrinsics -> 3D centre, extent, support.
- relations   spatial relations and measurements between 3D boxes (left/right, ..., distance, clock direction).
- scenes      scene records, the project's data contract (JSON Lines), with validation.
- grammar     LOR/DTR prompts, rendering and parsing of completions.
- marks       the region-colour convention: how a region is named in the text and drawn on the image.
- answers     free-text answers: lengths with units, choices, yes/no, clock hours.
- rewards     TRL-compatible reward functions (format, accuracy, detection, weighted total).
- metrics     benchmark metrics (SpatialRGPT-Bench success, abs-rel, Q-Spatial delta, MRA, centre error).
- inference   the engine (`SpatialReasoner`): Query -> prompt -> backend -> parsed `SpatialAnswer`.
- model/, data/, evaluation/   the model and processor, the data engine, the benchmark harness.
- ros/        the ROS wing without rclpy: message conversion, the query service, DDS, bags, `sr-real serve`.

The `sr-real` command line lives outside the library, in `sr_real.cli`.
"""

__version__ = "0.1.0"
