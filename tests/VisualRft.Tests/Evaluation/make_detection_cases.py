# Generates detection-cases.json: small random detection problems and what the reference tools report for them.
# CocoEvaluator and LvisEvaluator must reproduce every number (DetectionParityTests).
#
#   COCO cases -> pycocotools COCOeval(bbox): the 12 summarize() stats and, per category, AP / AP50 / AP75
#                 (area "all", maxDets 100, mean of precision > -1, x100 as the Visual-RFT notebook computes it).
#   LVIS cases -> the LVIS API's LVISResults(max_dets) + LVISEval(bbox).run(): its 13 results and, per category,
#                 AP / AP50 / AP75 and the Visual-RFT per-class AP (mean over all area ranges too).
#
# Rules every case set exercises: area ranges (annotation 'area' differing from w*h, boxes from tiny to huge),
# crowd regions (COCO), ties of scores (one decimal), IoU exactly on a threshold (integer boxes), more than 1/10/100
# detections per image and category, inverted detections (negative w or h: negative area), categories without ground
# truth, images without annotations, non-contiguous and unsorted image and category ids, a category subset (catIds);
# LVIS: neg_category_ids, not_exhaustive_category_ids, detections of unverified categories, the per-image max_dets
# limit across categories, 'ignore' flags, r/c/f frequencies.
#
# Reference code, never committed here: pycocotools from github.com/cocodataset/cocoapi (PythonAPI, built with
# Debian's python3-numpy 1.24 and cython3: `python3 setup.py build_ext --inplace`) and lvis/ of
# github.com/lvis-dataset/lvis-api. Run:  /usr/bin/python3 make_detection_cases.py COCOAPI/PythonAPI LVIS-API
import contextlib, io, json, os, random, sys, tempfile, types

import numpy as np
np.float = float  # cocoeval.py still uses the alias NumPy 1.24 removed

# coco.py imports matplotlib for its drawing helpers only: empty stand-ins are enough for evaluation.
for name, attrs in [("matplotlib", {}), ("matplotlib.pyplot", {}), ("matplotlib.collections", {"PatchCollection": None}), ("matplotlib.patches", {"Polygon": None})]:
    sys.modules[name] = types.ModuleType(name); sys.modules[name].__dict__.update(attrs)
sys.path.insert(0, sys.argv[1])
lvis_pkg = types.ModuleType("lvis"); lvis_pkg.__path__ = [os.path.join(sys.argv[2], "lvis")]
sys.modules["lvis"] = lvis_pkg  # skip lvis/__init__.py, which imports the plotting code (cv2, matplotlib)
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from lvis.lvis import LVIS
from lvis.results import LVISResults
from lvis.eval import LVISEval

rng = random.Random(10)


def r2(v): return round(v, 2)


def make_box(size_class):
    side = {"tiny": (2, 20), "small": (10, 40), "medium": (30, 100), "large": (90, 300)}[size_class]
    w, h = rng.uniform(*side), rng.uniform(*side)
    return [r2(rng.uniform(0, 500)), r2(rng.uniform(0, 500)), r2(w), r2(h)]


def jitter(b, s=0.25):
    x, y, w, h = b
    j = lambda: rng.uniform(-s, s)
    return [r2(x + j() * w), r2(y + j() * h), r2(w * (1 + j())), r2(h * (1 + j()))]


def make_problem(lvis):
    img_ids = rng.sample([1, 2, 3, 7, 10, 42, 100, 2024], rng.randint(3, 6))   # unsorted, non-contiguous
    cat_ids = rng.sample([1, 2, 5, 9, 13], rng.randint(2, 4))
    images, anns, dets = [], [], []
    no_truth = rng.choice(cat_ids) if rng.random() < 0.25 else None   # a category with detections only
    for im in img_ids:
        images.append(dict(id=im, width=640, height=640))
        for c in cat_ids:
            n = 0 if c == no_truth else rng.choice([0, 0, 1, 1, 2, 3, 5])
            for _ in range(n):
                size = rng.choice(["tiny", "small", "medium", "large"])
                if rng.random() < 0.15:   # integer box with detections exactly on IoU thresholds
                    x, y, w = rng.randrange(0, 400), rng.randrange(0, 400), rng.choice([20, 40, 100, 200])
                    b = [x, y, w, w]
                    for frac in rng.sample([0.5, 0.75, 0.55, 0.9, 0.95], 2):
                        dets.append(dict(image_id=im, category_id=c, bbox=[x, y, w, int(w * frac)], score=round(rng.random(), 1)))
                else:
                    b = make_box(size)
                area = r2(b[2] * b[3] * rng.uniform(0.5, 1.0))   # a segment's area, smaller than its box's
                ann = dict(id=len(anns) + 1, image_id=im, category_id=c, bbox=b, area=area)
                if not lvis:
                    ann["iscrowd"] = 1 if rng.random() < 0.08 else 0
                    if ann["iscrowd"]:   # crowd regions are big and attract several detections
                        ann["bbox"] = b = [r2(rng.uniform(0, 200)), r2(rng.uniform(0, 200)), 300, 300]
                        ann["area"] = 300 * 300 * 0.7
                        for _ in range(rng.randint(1, 4)):
                            dets.append(dict(image_id=im, category_id=c, bbox=[r2(b[0] + rng.uniform(0, 250)), r2(b[1] + rng.uniform(0, 250)), 40, 40], score=round(rng.random(), 1)))
                elif rng.random() < 0.05:
                    ann["ignore"] = 1
                anns.append(ann)
                if rng.random() < 0.75:
                    dets.append(dict(image_id=im, category_id=c, bbox=jitter(b), score=round(rng.random(), 1)))
            for _ in range(rng.choice([0, 0, 1, 2, 4])):   # false positives
                dets.append(dict(image_id=im, category_id=c, bbox=make_box(rng.choice(["small", "medium", "large"])), score=round(rng.random(), 1)))
            if rng.random() < 0.05:   # inverted box: negative width or height
                b = make_box("medium")
                b[rng.choice([2, 3])] *= -1
                dets.append(dict(image_id=im, category_id=c, bbox=b, score=round(rng.random(), 1)))
            if rng.random() < 0.025:   # a flood: past maxDets 10 and 100 (COCO) or max_dets (LVIS)
                b = make_box("large")
                for _ in range(rng.choice([12, 105])):
                    dets.append(dict(image_id=im, category_id=c, bbox=jitter(b, 0.4), score=round(rng.random(), 2)))
    cats = [dict(id=c, name=f"cat{c}") for c in sorted(cat_ids, key=lambda _: rng.random())]
    if lvis:
        for c in cats: c["frequency"] = rng.choice("rcf")
        for img in images:
            present = {a["category_id"] for a in anns if a["image_id"] == img["id"]}
            absent = [c for c in cat_ids if c not in present]
            img["neg_category_ids"] = [c for c in absent if rng.random() < 0.5]
            img["not_exhaustive_category_ids"] = [c for c in present if rng.random() < 0.25]
    rng.shuffle(dets)
    return dict(images=images, categories=cats, annotations=anns), dets, cat_ids


def ap_of(p):   # p: precision entries of one category; None where all are -1
    p = p[p > -1]
    return float(np.mean(p)) * 100 if p.size else None


def coco_case():
    gt_dict, dets, cat_ids = make_problem(lvis=False)
    if not dets: return None
    subset = sorted(rng.sample(cat_ids, len(cat_ids) - 1)) if rng.random() < 0.2 else None
    gt = COCO(); gt.dataset = json.loads(json.dumps(gt_dict))
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex(); dt = gt.loadRes(json.loads(json.dumps(dets)))
        E = COCOeval(gt, dt, "bbox")
        if subset: E.params.catIds = subset
        E.evaluate(); E.accumulate(); E.summarize()
    prec = E.eval["precision"]
    per = {str(c): dict(ap=ap_of(prec[:, :, k, 0, -1]), ap50=ap_of(prec[0, :, k, 0, -1]), ap75=ap_of(prec[5, :, k, 0, -1]))
           for k, c in enumerate(E.params.catIds)}
    return dict(kind="coco", gt=gt_dict, dt=dets, catIds=subset, stats=[float(s) for s in E.stats], perCategory=per)


def lvis_case(tmp):
    gt_dict, dets, cat_ids = make_problem(lvis=True)
    if not dets: return None
    max_dets = rng.choice([300, 300, 20])
    path = os.path.join(tmp, "gt.json")
    json.dump(gt_dict, open(path, "w"))
    gt = LVIS(path)
    res = LVISResults(gt, json.loads(json.dumps(dets)), max_dets=max_dets)
    E = LVISEval(gt, res, "bbox"); E.run()
    prec = E.eval["precision"]
    per = {str(c): dict(ap=ap_of(prec[:, :, k, 0]), ap50=ap_of(prec[0, :, k, 0]), ap75=ap_of(prec[5, :, k, 0]), apAllAreas=ap_of(prec[:, :, k, :]))
           for k, c in enumerate(E.params.cat_ids)}
    return dict(kind="lvis", gt=gt_dict, dt=dets, maxDets=max_dets, results=[float(v) for v in E.results.values()], perCategory=per)


cases = []
with tempfile.TemporaryDirectory() as tmp:
    while sum(c["kind"] == "coco" for c in cases) < 120:
        c = coco_case()
        if c: cases.append(c)
    while sum(c["kind"] == "lvis" for c in cases) < 80:
        c = lvis_case(tmp)
        if c: cases.append(c)
json.dump(cases, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "detection-cases.json"), "w"), separators=(",", ":"))
print(len(cases), "cases")
