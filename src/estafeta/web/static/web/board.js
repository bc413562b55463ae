// Drag a card onto the next column: submits the card's own "move to" form (the same POST that
// works without JavaScript). Any other drop does nothing.
document.addEventListener("DOMContentLoaded", function () {
  var dragged = null;
  document.querySelectorAll(".board-card[draggable=true]").forEach(function (card) {
    card.addEventListener("dragstart", function (e) {
      dragged = card;
      e.dataTransfer.setData("text/plain", card.dataset.number);
    });
    card.addEventListener("dragend", function () { dragged = null; });
  });
  document.querySelectorAll(".board-column").forEach(function (column) {
    column.addEventListener("dragover", function (e) {
      if (dragged && dragged.dataset.next === column.dataset.stage) {
        e.preventDefault();
        column.classList.add("drop-target");
      }
    });
    column.addEventListener("dragleave", function () { column.classList.remove("drop-target"); });
    column.addEventListener("drop", function (e) {
      column.classList.remove("drop-target");
      if (dragged && dragged.dataset.next === column.dataset.stage) {
        e.preventDefault();
        dragged.querySelector("form.move").submit();
      }
    });
  });
});
