// The model list shows only the chosen make's models (without JavaScript the list is grouped by make).
(function () {
  var make = document.getElementById("make"), model = document.getElementById("model");
  if (!make || !model) return;
  function filter() {
    var groups = model.querySelectorAll("optgroup");
    for (var i = 0; i < groups.length; i++) {
      var shown = !make.value || groups[i].getAttribute("data-make") === make.value;
      groups[i].hidden = !shown;
      groups[i].disabled = !shown;
    }
    var chosen = model.selectedOptions[0];
    if (chosen && chosen.parentNode.disabled) model.value = "";
  }
  make.addEventListener("change", filter);
  filter();
})();
