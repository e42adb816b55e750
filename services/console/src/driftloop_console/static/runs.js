// The runs table: the picked runs become the comparison's run_ids.
(function () {
  "use strict";
  var form = document.getElementById("compare-form");
  if (!form) { return; }
  form.addEventListener("submit", function (event) {
    var picked = Array.prototype.map.call(form.querySelectorAll("input.pick:checked"),
      function (box) { return box.value; });
    if (!picked.length) { event.preventDefault(); return; }
    document.getElementById("compare-ids").value = picked.join(",");
  });
})();
