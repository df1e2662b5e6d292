# Generates pycocotools-cases.json: random small detection problems (5 images, 2 categories, perturbed true boxes,
# random false positives, scores rounded to one decimal so that ties occur) and the per-category AP and AP50 that
# pycocotools' COCOeval (bbox, area "all", maxDets 100) reports for them. Used by CocoDetectionEvaluatorTests.
# Run with the pycocotools package installed:  python3 make_pycocotools_cases.py
# (The committed file was made with cocoapi's cocoeval.py/coco.py from the cocodataset/cocoapi repository, numpy 1.24,
#  and a NumPy bbox IoU equal to maskApi.c's bbIou in place of the compiled mask extension.)
import json, random, numpy as np, io, contextlib
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
rng = random.Random(5)
cases = []
for case in range(60):
    imgs = list(range(1, 6)); cats = [1, 2]
    anns = []; dets = []
    for im in imgs:
        for c in cats:
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                x, y = rng.uniform(0, 400), rng.uniform(0, 400); w, h = rng.uniform(10, 100), rng.uniform(10, 100)
                anns.append(dict(id=len(anns)+1, image_id=im, category_id=c, bbox=[round(x,2), round(y,2), round(w,2), round(h,2)], area=round(w,2)*round(h,2), iscrowd=0))
                if rng.random() < 0.7:
                    j = lambda: rng.uniform(-0.25, 0.25)
                    dets.append(dict(image_id=im, category_id=c, bbox=[round(x + j()*w,2), round(y + j()*h,2), round(w*(1+j()),2), round(h*(1+j()),2)], score=round(rng.random(), 1)))
            for _ in range(rng.choice([0, 1, 2])):
                x, y = rng.uniform(0, 400), rng.uniform(0, 400)
                dets.append(dict(image_id=im, category_id=c, bbox=[round(x,2), round(y,2), round(rng.uniform(10, 100),2), round(rng.uniform(10, 100),2)], score=round(rng.random(), 1)))
    if not dets: continue
    gt = COCO(); gt.dataset = dict(images=[dict(id=i) for i in imgs], categories=[dict(id=c) for c in cats], annotations=anns)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex(); dt = gt.loadRes(dets)
        E = COCOeval(gt, dt, 'bbox'); E.evaluate(); E.accumulate()
    res = {}
    for k, c in enumerate(cats):
        p = E.eval['precision'][:, :, k, 0, 2]
        res[c] = dict(ap=float(np.mean(p[p > -1])) * 100 if (p > -1).any() else None, ap50=float(np.mean(p[0][p[0] > -1])) * 100 if (p[0] > -1).any() else None)
    # loadRes rewrites bbox-based detections' order? it keeps list order; pass them in the same order
    cases.append(dict(gts=[[a['image_id'], a['category_id']] + a['bbox'] for a in anns], dts=[[d['image_id'], d['category_id']] + d['bbox'] + [d['score']] for d in dets], res=res))
json.dump(cases, open("pycocotools-cases.json", "w"), separators=(',', ':'))
print(len(cases))
